using System.Diagnostics;
using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

public sealed partial class CaseGrpcService
{
    /// <summary>Longest file name accepted, as the contract states.</summary>
    public const int MaxIngestNameLength = 1024;

    /// <summary>Files handed to the case space together and stored under one checkpoint: fewer checkpoints, at the cost of later acknowledgements.</summary>
    public const int IngestResultGroup = 16;

    /// <summary>How long a file may wait for its group to fill, so that a slow client still hears back.</summary>
    public static readonly TimeSpan IngestResultWait = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Client-streamed files, one result each, in request order. Files are stored in groups of
    /// <see cref="IngestResultGroup"/> (fewer at the end of the stream, or once the first has waited
    /// <see cref="IngestResultWait"/>), and a group's results are sent only once the case space has made it durable,
    /// so STORED and UPDATED mean durable. A bad file or field costs that file alone (FAILED naming it);
    /// cancellation stops between files.
    /// </summary>
    public override Task Ingest(IAsyncStreamReader<IngestRequest> requestStream, IServerStreamWriter<IngestResult> responseStream,
        ServerCallContext context) =>
        Calls.Stoppable(context, async () =>
        {
            await IngestStreamAsync(requestStream, responseStream, context);
            return true;
        });

    private async Task IngestStreamAsync(IAsyncStreamReader<IngestRequest> requestStream, IServerStreamWriter<IngestResult> responseStream,
        ServerCallContext context)
    {
        var cancellation = context.CancellationToken;
        // Each request's result, and the file to store for it; a request refused at the edge has its result already and no file.
        var group = new List<(IngestResult Result, IngestItem? Item)>(IngestResultGroup);
        var sinceFirst = new Stopwatch();

        async Task StoreAsync()
        {
            if (group.Count == 0) return;
            var items = group.Where(g => g.Item is not null).Select(g => g.Item!).ToList();
            var outcomes = items.Count == 0 ? [] : await inference.RunAsync(() => space.IngestAsync(items, cancellation), cancellation);
            int filled = 0;
            foreach (var (result, item) in group)
            {
                if (item is not null) Fill(result, outcomes[filled++]);
                await responseStream.WriteAsync(result);
            }
            group.Clear();
        }

        int sequence = 0;
        Task<bool>? next = null;
        while (true)
        {
            next ??= requestStream.MoveNext(cancellation);
            if (group.Count > 0 && !next.IsCompleted)
            {
                var wait = IngestResultWait - sinceFirst.Elapsed;
                if (wait > TimeSpan.Zero) await Task.WhenAny(next, Task.Delay(wait, cancellation));
                if (!next.IsCompleted)
                {
                    await StoreAsync();
                    continue;
                }
            }
            if (!await next) break;
            next = null;
            group.Add(Prepare(requestStream.Current, sequence++));
            if (group.Count == 1) sinceFirst.Restart();
            if (group.Count >= IngestResultGroup || sinceFirst.Elapsed >= IngestResultWait) await StoreAsync();
        }
        await StoreAsync();
    }

    /// <summary>The request's result so far, and the file to store; a request with a bad field is FAILED already, with nothing to store.</summary>
    private static (IngestResult Result, IngestItem? Item) Prepare(IngestRequest request, int sequence)
    {
        var result = new IngestResult { Sequence = sequence, Name = request.Name };
        if (IngestProblem(request) is { } problem)
        {
            result.Outcome = IngestOutcome.Failed;
            result.Reason = problem;
            return (result, null);
        }
        var annotation = request.Labels.Count == 0 && request.Metadata.Count == 0
            ? null
            : new CaseAnnotation([.. request.Labels], new Dictionary<string, string>(request.Metadata, StringComparer.Ordinal));
        return (result, new IngestItem(request.Name, request.File.Memory, annotation));
    }

    private static void Fill(IngestResult result, IngestItemResult item)
    {
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
