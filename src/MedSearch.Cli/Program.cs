using MedSearch.Engine;

namespace MedSearch.Cli;

/// <summary>`medsearch VERB ...`: each verb parses its own options and prints its own --help.</summary>
public static class Program
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    /// <summary>The job finished but some inputs failed; the summary lists them.</summary>
    public const int PartialFailure = 3;

    private const string Overview = """
        medsearch: image-to-image retrieval for medical imaging

        usage: medsearch <verb> [options]     (medsearch <verb> --help for each verb)

        verbs:
          index PATH    embed and store every image under PATH (DICOM, PNG, JPEG)
          serve         run the gRPC search service
          query IMAGE   ask a running server for the cases most similar to IMAGE
          reindex       re-embed every case with another model into a new data directory
          delete        remove a case, series, study or patient from the store and the index
          eval          measure neighbour-vote classification: ROC, AUC, operating points, subgroups
          export        write the stored embeddings (.npy) and cases (.csv) for other tools
          keys          add, list or remove the API keys of `serve --keys`

        The data directory is --data DIR, else $MEDSEARCH_DATA, else ./index-data.
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.Out.Write(Overview);
            return args.Length == 0 ? Usage : Ok;
        }
        var rest = args[1..];
        try
        {
            return args[0] switch
            {
                "index" => await IndexCommand.RunAsync(rest),
                "serve" => await ServeCommand.RunAsync(rest),
                "query" => await QueryCommand.RunAsync(rest),
                "reindex" => await ReindexCommand.RunAsync(rest),
                "delete" => await DeleteCommand.RunAsync(rest),
                "eval" => await EvalCommand.RunAsync(rest),
                "export" => await ExportCommand.RunAsync(rest),
                "keys" => await KeysCommand.RunAsync(rest),
                _ => throw new UsageException($"unknown verb `{args[0]}`; run `medsearch --help`"),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"medsearch {args[0]}: {e.Message}");
            return Usage;
        }
        // A damaged store, a full disk or an output path that is taken: the message names the file; a stack trace
        // would only bury it.
        catch (Exception e) when (e is CollectionException or Storage.StoreException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"medsearch {args[0]}: {e.Message}");
            return Failure;
        }
    }
}
