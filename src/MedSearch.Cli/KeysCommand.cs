using MedSearch.Server;
using MedSearch.Server.Security;

namespace MedSearch.Cli;

/// <summary>`medsearch keys add|list|remove`: the operator's side of the API keys file that `serve --keys` reads.</summary>
public static class KeysCommand
{
    private const string Help = $"""
        usage: medsearch keys add --keys FILE --name NAME --permission read|write
               medsearch keys list --keys FILE
               medsearch keys remove --keys FILE --name NAME

        Manages the API keys of `medsearch serve --keys FILE`. `add` prints the new key's secret once: only its
        SHA-256 is stored, so it cannot be shown again (remove the key and add a new one instead). Callers send it
        as gRPC metadata (HTTP header) `authorization: Bearer <secret>`. A read key may call Search, Classify, Get,
        Stats and ListLabels; a write key may also call Ingest, UpdateLabels and Delete. A running server reads
        the file at start: restart it after a change.

        options:
          --keys FILE          the keys file (default: ${ServerOptions.KeysEnvironmentVariable}); created by `add`, owner-only
          --name NAME          the key's id, shown in the audit log: letters, digits, '.', '_', '-'
          --permission P       read or write
        """;

    public static Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, new HashSet<string> { "--keys", "--name", "--permission" }, new HashSet<string>());
        if (line.Help) { Console.Out.Write(Help); return Task.FromResult(Program.Ok); }
        if (line.Positional.Count != 1) throw new UsageException("give one action: add, list or remove (see `medsearch keys --help`)");
        var path = line.Get("--keys") ?? Environment.GetEnvironmentVariable(ServerOptions.KeysEnvironmentVariable);
        if (string.IsNullOrWhiteSpace(path)) throw new UsageException($"--keys FILE is required (or set ${ServerOptions.KeysEnvironmentVariable})");

        try
        {
            switch (line.Positional[0])
            {
                case "add":
                {
                    var name = line.Get("--name") ?? throw new UsageException("add needs --name NAME");
                    Permission permission;
                    try { permission = MethodPermissions.Parse(line.Get("--permission") ?? throw new UsageException("add needs --permission read|write"), "--permission"); }
                    catch (FormatException e) { throw new UsageException(e.Message); }
                    var store = ApiKeyStore.Load(path, mustExist: false);
                    string secret;
                    try { secret = store.Add(name, permission); }
                    catch (ArgumentException e) { throw new UsageException(e.Message); }
                    store.Save();
                    Console.Error.WriteLine($"added {permission.Name()} key `{name}` to {store.Path}; its secret, shown only now:");
                    // Alone on stdout so that scripts can capture it: `KEY=$(medsearch keys add ...)`.
                    Console.Out.WriteLine(secret);
                    return Task.FromResult(Program.Ok);
                }
                case "list":
                {
                    var store = ApiKeyStore.Load(path);
                    Console.Out.WriteLine($"{"name",-24}  {"permission",-10}  created (UTC)");
                    foreach (var key in store.Keys)
                        Console.Out.WriteLine($"{key.Id,-24}  {key.Permission.Name(),-10}  {key.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss}");
                    return Task.FromResult(Program.Ok);
                }
                case "remove":
                {
                    var name = line.Get("--name") ?? throw new UsageException("remove needs --name NAME");
                    var store = ApiKeyStore.Load(path);
                    if (!store.Remove(name)) throw new UsageException($"--name: no key named `{name}` in {store.Path}");
                    store.Save();
                    Console.Out.WriteLine($"removed key `{name}` from {store.Path}; a running server keeps accepting it until restarted");
                    return Task.FromResult(Program.Ok);
                }
                default:
                    throw new UsageException($"unknown action `{line.Positional[0]}`: use add, list or remove");
            }
        }
        catch (ServerOptionsException e)
        {
            Console.Error.WriteLine($"medsearch keys: {e.Message}");
            return Task.FromResult(Program.Failure);
        }
    }
}
