using MedSearch.Engine;
using MedSearch.Evaluation;

namespace MedSearch.Cli;

public static class ExportCommand
{
    private const string Help = $"""
        usage: medsearch export --out DIR [--where KEY=VALUE] [--data DIR]

        Writes the stored embeddings and their cases, row for row, for other tools: DIR/{CaseExport.EmbeddingsFile}
        (float32, cases × dimensions; numpy.load reads it) and DIR/{CaseExport.CasesFile} (row, id, key, source,
        labels joined by ';', model_id, then every metadata column), in case-key order. Stop `serve` on the data
        directory first.

        options:
          --out DIR          where the two files go (created if needed)
          --where KEY=VALUE  only cases whose metadata KEY is VALUE (e.g. split=test)
          --data DIR         data directory (default: $MEDSEARCH_DATA, else ./index-data)
        {EncoderArguments.ModelAndDeviceHelp}

        exit status: 0 written, 1 the collection could not be opened, 2 bad usage
        """;

    public static Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, new HashSet<string> { "--out", "--where", "--data", EncoderArguments.Model, EncoderArguments.Device },
            new HashSet<string>());
        if (line.Help) { Console.Out.Write(Help); return Task.FromResult(Program.Ok); }
        if (line.Positional.Count != 0) throw new UsageException($"takes no positional arguments, got `{line.Positional[0]}`");
        var output = line.Get("--out") ?? throw new UsageException("--out DIR is required");
        (string, string)? where = null;
        if (line.Get("--where") is { } condition)
        {
            int eq = condition.IndexOf('=');
            if (eq <= 0) throw new UsageException($"--where must be KEY=VALUE, got `{condition}`");
            where = (condition[..eq].Trim(), condition[(eq + 1)..].Trim());
        }
        var dataPath = DataDirectory.Resolve(line.Get("--data"));
        using var collection = Collection.Open(dataPath, EncoderArguments.Options(line), message => Console.Out.WriteLine(message));
        var summary = CaseExport.Write(collection, output, where);
        Console.Out.WriteLine($"exported {summary.Cases:N0} case(s) of {summary.Dimensions} dimensions: {summary.EmbeddingsPath}, {summary.CasesPath}");
        return Task.FromResult(Program.Ok);
    }
}
