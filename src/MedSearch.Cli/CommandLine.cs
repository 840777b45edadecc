namespace MedSearch.Cli;

/// <summary>A bad command line; the message says which argument and why.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Positional arguments plus `--name value` / `-k value` options, checked against the options a verb
/// declares so that a typo is an error, not a silently ignored flag.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);

    private CommandLine(List<string> positional) => Positional = positional;

    public IReadOnlyList<string> Positional { get; }
    public bool Help => _options.ContainsKey("--help");

    public static CommandLine Parse(IReadOnlyList<string> args, IReadOnlySet<string> valued, IReadOnlySet<string> flags)
    {
        var positional = new List<string>();
        var line = new CommandLine(positional);
        for (int i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "--help" or "-h") { line._options["--help"] = null; continue; }
            if (!arg.StartsWith('-') || arg == "-") { positional.Add(arg); continue; }

            var name = arg;
            string? value = null;
            int eq = arg.IndexOf('=');
            if (eq > 0) { name = arg[..eq]; value = arg[(eq + 1)..]; }
            if (flags.Contains(name))
            {
                if (value is not null) throw new UsageException($"{name} takes no value");
                line._options[name] = null;
            }
            else if (valued.Contains(name))
            {
                if (value is null)
                {
                    if (i + 1 >= args.Count) throw new UsageException($"{name} needs a value");
                    value = args[++i];
                }
                line._options[name] = value;
            }
            else
            {
                throw new UsageException($"unknown option {name}");
            }
        }
        return line;
    }

    public string? Get(string name) => _options.GetValueOrDefault(name);

    public bool Has(string name) => _options.ContainsKey(name);

    public int GetInt(string name, int fallback)
    {
        var text = Get(name);
        if (text is null) return fallback;
        return int.TryParse(text, out var value) ? value : throw new UsageException($"{name} must be a whole number, got `{text}`");
    }
}
