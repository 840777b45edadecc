using MedSearch.Engine;
using MedSearch.Server;
using Microsoft.Extensions.Hosting;

namespace MedSearch.Cli;

public static class ServeCommand
{
    private const string Help = $"""
        usage: medsearch serve [--data DIR] [--urls URLS] [--model M] [--device D]

        Runs the gRPC service (HTTP/2) over the data directory: medsearch.v1.SearchService, grpc.health.v1 and
        server reflection. Stops cleanly on Ctrl-C or SIGTERM.

        options:
          --data DIR      data directory (default: $MEDSEARCH_DATA, else ./index-data)
          --urls URLS     where to listen, ';'-separated (default {ServerOptions.DefaultUrls}: loopback only)
        {EncoderArguments.ModelAndDeviceHelp}
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, new HashSet<string> { "--data", "--urls", EncoderArguments.Model, EncoderArguments.Device }, new HashSet<string>());
        if (line.Help) { Console.Out.Write(Help); return Program.Ok; }
        if (line.Positional.Count != 0) throw new UsageException($"takes no positional arguments, got `{line.Positional[0]}`");

        var options = new ServerOptions
        {
            DataPath = DataDirectory.Resolve(line.Get("--data")),
            Urls = line.Get("--urls") ?? ServerOptions.DefaultUrls,
            Collection = EncoderArguments.Options(line),
        };
        Console.Out.WriteLine($"data directory: {options.DataPath}");
        await using var app = MedSearchServer.Build(options, message => Console.Out.WriteLine(message));
        await app.StartAsync();
        var collection = app.Services.GetService(typeof(Collection)) as Collection;
        Console.Out.WriteLine($"model: {collection?.ModelId}; {collection?.Count:N0} cases; listening on {string.Join(", ", app.Urls)}");
        await app.WaitForShutdownAsync();
        return Program.Ok;
    }
}
