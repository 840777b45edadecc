using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Protocol.V1;
using MedSearch.Server;

namespace MedSearch.Cli;

public static class QueryCommand
{
    private const string Help = $"""
        usage: medsearch query IMAGE [--server URL] [-k N]

        Sends IMAGE (DICOM, PNG or JPEG) to a running `medsearch serve` and prints the k most similar cases
        (rank, similarity, id, labels, source) and the neighbour-vote score of each label.

        options:
          --server URL    the server (default {ServerOptions.DefaultUrls})
          -k N            how many neighbours, 1..1000 (default 10)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, new HashSet<string> { "--server", "-k" }, new HashSet<string>());
        if (line.Help) { Console.Out.Write(Help); return Program.Ok; }
        if (line.Positional.Count != 1) throw new UsageException("expects exactly one IMAGE file");
        var path = line.Positional[0];
        if (!File.Exists(path)) throw new UsageException($"{path} does not exist");
        int k = line.GetInt("-k", 10);

        using var channel = GrpcChannel.ForAddress(line.Get("--server") ?? ServerOptions.DefaultUrls);
        var client = new SearchService.SearchServiceClient(channel);
        var request = new SearchRequest
        {
            Image = Google.Protobuf.ByteString.CopyFrom(await File.ReadAllBytesAsync(path)),
            ImageName = Path.GetFileName(path),
            K = k,
        };
        SearchResponse response;
        try
        {
            response = await client.SearchAsync(request, deadline: DateTime.UtcNow.AddMinutes(2));
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"medsearch query: {path}: {e.Status.StatusCode}: {e.Status.Detail}");
            return Program.Failure;
        }
        Print(response);
        return Program.Ok;
    }

    private static void Print(SearchResponse response)
    {
        var o = Console.Out;
        var c = CultureInfo.InvariantCulture;
        o.WriteLine($"model: {response.ModelId}");
        o.WriteLine($"{"rank",4}  {"similarity",10}  {"id",-16}  {"labels",-20}  source");
        foreach (var n in response.Neighbours)
            o.WriteLine(string.Format(c, "{0,4}  {1,10:F4}  {2,-16}  {3,-20}  {4}", n.Rank, n.Similarity, n.CaseId,
                n.Labels.Count == 0 ? "(unlabelled)" : string.Join(";", n.Labels), n.Source));
        o.WriteLine();
        o.WriteLine(response.Votes.Count == 0 ? "no labelled neighbours: no vote" : "neighbour vote:");
        foreach (var v in response.Votes)
            o.WriteLine(string.Format(c, "  {0,-20} {1,6:P1}  ({2} neighbours)", v.Label, v.Score, v.Neighbours));
        if (response.UnlabelledNeighbours > 0)
            o.WriteLine($"  {response.UnlabelledNeighbours} unlabelled neighbours not counted");
    }
}
