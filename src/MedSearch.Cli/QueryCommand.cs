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
               medsearch query --level series|study (FOLDER | --uid UID) [--server URL] [-k N]

        Sends IMAGE (DICOM, PNG or JPEG) to a running `medsearch serve` and prints the k most similar cases
        (rank, similarity, id, labels, source) and the neighbour-vote score of each label. At series or study
        level the query is the DICOM files under FOLDER (one series, or one study), or a stored series/study by
        its UID, and each hit names its slice and the query's slice that match best.

        options:
          --server URL    the server (default {ServerOptions.DefaultUrls})
          -k N            how many neighbours, 1..1000 (default 10)
          --level L       instance (default), series or study
          --uid UID       a stored Series/Study Instance UID as the query (with --level)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, new HashSet<string> { "--server", "-k", "--level", "--uid" }, new HashSet<string>());
        if (line.Help) { Console.Out.Write(Help); return Program.Ok; }
        var level = line.Get("--level") switch
        {
            null or "instance" => Level.Instance,
            "series" => Level.Series,
            "study" => Level.Study,
            var other => throw new UsageException($"--level must be instance, series or study, got `{other}`"),
        };
        var request = new SearchRequest { K = line.GetInt("-k", 10), Level = level };
        string path;
        if (line.Get("--uid") is { } uid)
        {
            if (level == Level.Instance || line.Positional.Count != 0) throw new UsageException("--uid goes with --level series|study and no FOLDER");
            request.CaseId = path = uid;
        }
        else
        {
            if (line.Positional.Count != 1) throw new UsageException(level == Level.Instance ? "expects exactly one IMAGE file" : "expects one FOLDER (or --uid)");
            path = line.Positional[0];
            if (level == Level.Instance)
            {
                if (!File.Exists(path)) throw new UsageException($"{path} does not exist");
                request.Image = Google.Protobuf.ByteString.CopyFrom(await File.ReadAllBytesAsync(path));
                request.ImageName = Path.GetFileName(path);
            }
            else
            {
                if (!Directory.Exists(path)) throw new UsageException($"{path} is not a folder");
                request.Images = new ImageSet();
                foreach (var file in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                {
                    request.Images.Files.Add(Google.Protobuf.ByteString.CopyFrom(await File.ReadAllBytesAsync(file)));
                    request.Images.Names.Add(Path.GetRelativePath(path, file));
                }
            }
        }

        using var channel = GrpcChannel.ForAddress(line.Get("--server") ?? ServerOptions.DefaultUrls,
            new GrpcChannelOptions { MaxSendMessageSize = null });
        var client = new SearchService.SearchServiceClient(channel);
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
        {
            o.WriteLine(string.Format(c, "{0,4}  {1,10:F4}  {2,-16}  {3,-20}  {4}", n.Rank, n.Similarity, n.CaseId,
                n.Labels.Count == 0 ? "(unlabelled)" : string.Join(";", n.Labels), n.Source));
            if (n.BestSlices is { } pair)
                o.WriteLine(string.Format(c, "{0,34}best slices: {1} ~ {2} ({3:F4})", "", pair.QuerySlice, pair.HitSliceKey, pair.Similarity));
        }
        o.WriteLine();
        o.WriteLine(response.Votes.Count == 0 ? "no labelled neighbours: no vote" : "neighbour vote:");
        foreach (var v in response.Votes)
            o.WriteLine(string.Format(c, "  {0,-20} {1,6:P1}  ({2} neighbours)", v.Label, v.Score, v.Neighbours));
        foreach (var warning in response.Warnings) o.WriteLine($"  left out of the query: {warning}");
        if (response.UnlabelledNeighbours > 0)
            o.WriteLine($"  {response.UnlabelledNeighbours} unlabelled neighbours not counted");
    }
}
