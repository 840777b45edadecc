using System.Diagnostics;
using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

public sealed partial class CaseGrpcService
{
    /// <summary>Longest file name accepted, as the contract states.</summary>
    public const int MaxIngestNameLength = 1024;

    /// <summary>Results sent together after one checkpoint: fewer checkpoints, at the cost of later acknowledgements.</summary>
    public const int IngestResultGroup = 16;

    /// <summary>How long a result may wait for its group to fill, so that a slow client still hears back.</summary>
    public static readonly TimeSpan IngestResultWait = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Client-streamed files, one result each, in request order. A result is sent only once a checkpoint covers
    /// its case, so STORED and UPDATED mean durable: results wait for a group of <see cref="IngestResultGroup"/>,
    /// the end of the stream, or <see cref="IngestResultWait"/>, whichever comes first. A bad file or field costs
    /// that file alone (FAILED naming it); cancellation stops between files.
    /// </summary>
    public override async Task Ingest(IAsyncStreamReader<IngestRequest> requestStream, IServerStreamWriter<IngestResult> responseStream,
        ServerCallContext context)
    {
        var cancellation = context.CancellationToken;
        var unsent = new List<IngestResult>(IngestResultGroup);
        var sinceFirstUnsent = new Stopwatch();

        async Task SendAsync()
        {
            if (unsent.Count == 0) return;
            // Even UNCHANGED waits for the checkpoint: the stored case may be another stream's write not yet covered.
            if (unsent.Any(r => r.Outcome is IngestOutcome.Stored or IngestOutcome.Updated or IngestOutcome.Unchanged))
                await Task.Run(() => collection.Checkpoint(saveIndex: false), CancellationToken.None);
            foreach (var result in unsent) await responseStream.WriteAsync(result);
            unsent.Clear();
        }

        int sequence = 0;
        Task<bool>? next = null;
        try
        {
            while (true)
            {
                next ??= requestStream.MoveNext(cancellation);
                if (unsent.Count > 0 && !next.IsCompleted)
                {
                    var wait = IngestResultWait - sinceFirstUnsent.Elapsed;
                    if (wait > TimeSpan.Zero) await Task.WhenAny(next, Task.Delay(wait, cancellation));
                    if (!next.IsCompleted)
                    {
                        await SendAsync();
                        continue;
                    }
                }
                if (!await next) break;
                next = null;
                var request = requestStream.Current;
                unsent.Add(await IngestOneAsync(request, sequence++, inference, cancellation));
                if (unsent.Count == 1) sinceFirstUnsent.Restart();
                if (unsent.Count >= IngestResultGroup || sinceFirstUnsent.Elapsed >= IngestResultWait) await SendAsync();
            }
        }
        catch (RpcException) when (!cancellation.IsCancellationRequested)
        {
            // Refused mid-stream (the server is busy): the files done so far still get their results.
            await SendAsync();
            throw;
        }
        await SendAsync();
    }

    private async Task<IngestResult> IngestOneAsync(IngestRequest request, int sequence, InferenceGate inference, CancellationToken cancellation)
    {
        var result = new IngestResult { Sequence = sequence, Name = request.Name };
        if (IngestProblem(request) is { } problem)
        {
            result.Outcome = IngestOutcome.Failed;
            result.Reason = problem;
            return result;
        }
        var annotation = request.Labels.Count == 0 && request.Metadata.Count == 0
            ? null
            : new CaseAnnotation([.. request.Labels], new Dictionary<string, string>(request.Metadata, StringComparer.Ordinal));
        var item = await inference.RunAsync(() => CaseWriter.Ingest(collection, request.Name, request.File.Memory, annotation), cancellation);
        result.Outcome = item.Outcome switch
        {
            ItemOutcome.Indexed => IngestOutcome.Stored,
            ItemOutcome.Updated => IngestOutcome.Updated,
            ItemOutcome.Unchanged => IngestOutcome.Unchanged,
            ItemOutcome.Skipped => IngestOutcome.Skipped,
            _ => IngestOutcome.Failed,
        };
        result.Reason = item.Reason ?? "";
        if (item.Key is { } key)
        {
            result.Key = key;
            result.CaseId = CaseId.Format(CaseId.FromKey(key));
        }
        return result;
    }

    /// <summary>What makes a request unusable, naming the field; null when it is fine.</summary>
    private static string? IngestProblem(IngestRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.Name)) return "name: empty";
        if (request.Name.Length > MaxIngestNameLength)
            return $"name: {request.Name.Length} characters, at most {MaxIngestNameLength} are accepted";
        if (request.File.IsEmpty) return "file: empty (0 bytes)";
        foreach (var label in request.Labels)
            if (CaseAnnotation.LabelProblem(label) is { } problem)
                return problem;
        foreach (var key in request.Metadata.Keys)
            if (string.IsNullOrWhiteSpace(key) || key != key.Trim())
                return $"metadata: key `{key}` is empty or has surrounding spaces";
        return null;
    }
}
