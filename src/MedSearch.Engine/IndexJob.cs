using System.Diagnostics;
using System.Security.Cryptography;
using System.Threading.Channels;
using MedSearch.Imaging;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

public sealed record IndexJobOptions
{
    /// <summary>Folder (walked recursively) or single file to index.</summary>
    public required string Root { get; init; }
    public string? LabelsPath { get; init; }
    public int BatchSize { get; init; } = 16;
    public int DecodeWorkers { get; init; } = Math.Max(1, Environment.ProcessorCount);
}

public enum ItemOutcome { Indexed, Updated, Unchanged, Skipped, Failed }

public sealed record ItemResult(string Path, ItemOutcome Outcome, string? Reason = null);

public sealed record IndexProgress(int Done, int Total, double ImagesPerSecond, TimeSpan? Remaining);

public sealed class IndexSummary
{
    public int Indexed { get; internal set; }
    public int Updated { get; internal set; }
    public int Unchanged { get; internal set; }
    public List<ItemResult> Skipped { get; } = [];
    public List<ItemResult> Failed { get; } = [];
    /// <summary>labels.csv rows that matched no file of this run (typos in paths show up here).</summary>
    public List<string> UnmatchedLabelRows { get; } = [];
    public int WithoutLabels { get; internal set; }
    public TimeSpan Elapsed { get; internal set; }
    public bool Cancelled { get; internal set; }
}

/// <summary>
/// `medsearch index`: walks a folder, decodes on several workers while the encoder embeds batches, and
/// commits each batch to the collection. Re-running it on the same folder re-embeds nothing that is already
/// stored with the same bytes and model; changed labels are applied in place.
/// </summary>
public static class IndexJob
{
    private sealed record Decoded(string Path, string Key, byte[] Sha256, PixelImage Image, CaseAnnotation? Annotation);

    public static async Task<IndexSummary> RunAsync(Collection collection, IndexJobOptions options,
        IProgress<IndexProgress>? progress = null, CancellationToken cancellation = default)
    {
        var root = Path.GetFullPath(options.Root);
        var labels = options.LabelsPath is null ? null : LabelsFile.Load(options.LabelsPath);
        var files = EnumerateFiles(root);
        var summary = new IndexSummary();
        var watch = Stopwatch.StartNew();
        var seenKeys = new HashSet<string>(StringComparer.Ordinal);
        var candidates = new List<(string Path, string Key)>();
        foreach (var file in files)
        {
            if (!ImageReader.IsCandidateFile(file))
            {
                if (options.LabelsPath is null || Path.GetFullPath(options.LabelsPath) != file)
                    summary.Skipped.Add(new ItemResult(file, ItemOutcome.Skipped, $"not an image file type ({Extension(file)})"));
                continue;
            }
            var relative = File.Exists(root) ? Path.GetFileName(file) : Path.GetRelativePath(root, file);
            var key = CaseId.FileKey(relative);
            seenKeys.Add(key);
            candidates.Add((file, key));
        }
        if (labels is not null)
            summary.UnmatchedLabelRows.AddRange(labels.Keys.Where(k => !seenKeys.Contains(k)).Order(StringComparer.Ordinal));

        int total = candidates.Count, done = 0;
        void Report()
        {
            double rate = done / Math.Max(watch.Elapsed.TotalSeconds, 1e-3);
            progress?.Report(new IndexProgress(done, total, rate, rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : null));
        }

        // Bounded so that memory stays flat on folders of any size: decoders wait for the encoder, never the reverse.
        var decoded = Channel.CreateBounded<Decoded>(new BoundedChannelOptions(options.BatchSize * 4) { SingleReader = true });
        var results = new List<ItemResult>();
        var resultsLock = new Lock();
        void Record(ItemResult result)
        {
            lock (resultsLock)
            {
                results.Add(result);
                done++;
            }
        }

        var producers = Task.Run(async () =>
        {
            try
            {
                await Parallel.ForEachAsync(candidates, new ParallelOptions { MaxDegreeOfParallelism = options.DecodeWorkers, CancellationToken = cancellation },
                    async (item, ct) =>
                    {
                        var prepared = Prepare(collection, item.Path, item.Key, labels, Record);
                        if (prepared is not null) await decoded.Writer.WriteAsync(prepared, ct);
                    });
            }
            finally
            {
                decoded.Writer.Complete();
            }
        }, CancellationToken.None);

        var batch = new List<Decoded>(options.BatchSize);
        var lastReport = Stopwatch.StartNew();
        try
        {
            while (await decoded.Reader.WaitToReadAsync(cancellation))
            {
                batch.Clear();
                while (batch.Count < options.BatchSize && decoded.Reader.TryRead(out var item)) batch.Add(item);
                Commit(collection, batch, Record);
                if (lastReport.ElapsedMilliseconds >= 200) { Report(); lastReport.Restart(); }
            }
            await producers;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            summary.Cancelled = true;
            try { await producers; } catch (OperationCanceledException) { }
        }
        finally
        {
            // Whatever was committed becomes durable, so a re-run resumes instead of starting over.
            collection.Checkpoint();
        }
        Report();

        foreach (var result in results.OrderBy(r => r.Path, StringComparer.Ordinal))
        {
            switch (result.Outcome)
            {
                case ItemOutcome.Indexed: summary.Indexed++; break;
                case ItemOutcome.Updated: summary.Updated++; break;
                case ItemOutcome.Unchanged: summary.Unchanged++; break;
                case ItemOutcome.Failed: summary.Failed.Add(result); break;
                case ItemOutcome.Skipped: summary.Skipped.Add(result); break;
            }
        }
        if (labels is not null)
            summary.WithoutLabels = candidates.Count(c => labels.Find(c.Key) is null);
        summary.Elapsed = watch.Elapsed;
        return summary;
    }

    private static Decoded? Prepare(Collection collection, string path, string key, LabelsFile? labels, Action<ItemResult> report)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            report(new ItemResult(path, ItemOutcome.Failed, $"cannot be read: {e.Message}"));
            return null;
        }
        var sha = SHA256.HashData(bytes);
        var annotation = labels?.Find(key);
        if (collection.TryGetCase(CaseId.FromKey(key), out var stored) && stored.Key == key
            && stored.ModelId == collection.ModelId && stored.ContentSha256.Span.SequenceEqual(sha))
        {
            if (annotation is null || SameAnnotation(stored, annotation))
            {
                report(new ItemResult(path, ItemOutcome.Unchanged));
            }
            else
            {
                var updated = stored.Clone();
                ApplyAnnotation(updated, annotation);
                collection.Annotate(updated);
                report(new ItemResult(path, ItemOutcome.Updated, "labels or metadata changed"));
            }
            return null;
        }
        try
        {
            var image = ImageReader.Decode(bytes, path);
            return new Decoded(path, key, sha, image, annotation);
        }
        catch (ImageDecodeException e)
        {
            report(new ItemResult(path, ItemOutcome.Failed, e.Reason));
            return null;
        }
    }

    private static void Commit(Collection collection, List<Decoded> batch, Action<ItemResult> report)
    {
        if (batch.Count == 0) return;
        var images = batch.Select(b => b.Image).ToArray();
        var vectors = new float[images.Length * collection.Dimensions];
        collection.Encoder.Embed(images, vectors);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < batch.Count; i++)
        {
            var item = batch[i];
            ulong id = CaseId.FromKey(item.Key);
            bool existed = collection.TryGetCase(id, out var previous);
            var record = new CaseRecord
            {
                Id = id,
                Key = item.Key,
                Source = item.Path,
                ModelId = collection.ModelId,
                ContentSha256 = Google.Protobuf.ByteString.CopyFrom(item.Sha256),
                IndexedUnixMs = now,
                Width = item.Image.Width,
                Height = item.Image.Height,
            };
            record.Embedding.Add(vectors.AsSpan(i * collection.Dimensions, collection.Dimensions).ToArray());
            if (item.Annotation is not null) ApplyAnnotation(record, item.Annotation);
            else if (previous is not null)
            {
                // No labels.csv row this time: keep what an earlier run recorded rather than erase it.
                record.Labels.Add(previous.Labels);
                record.Metadata.Add(previous.Metadata);
            }
            try
            {
                collection.Put(record);
                report(new ItemResult(item.Path, existed ? ItemOutcome.Updated : ItemOutcome.Indexed, existed ? "file content changed" : null));
            }
            catch (CollectionException e)
            {
                report(new ItemResult(item.Path, ItemOutcome.Failed, e.Message));
            }
        }
    }

    private static bool SameAnnotation(CaseRecord stored, CaseAnnotation annotation) =>
        stored.Labels.SequenceEqual(annotation.Labels)
        && stored.Metadata.Count == annotation.Metadata.Count
        && annotation.Metadata.All(p => stored.Metadata.TryGetValue(p.Key, out var v) && v == p.Value);

    private static void ApplyAnnotation(CaseRecord record, CaseAnnotation annotation)
    {
        record.Labels.Clear();
        record.Labels.Add(annotation.Labels);
        record.Metadata.Clear();
        foreach (var (key, value) in annotation.Metadata) record.Metadata[key] = value;
    }

    private static IEnumerable<string> EnumerateFiles(string root)
    {
        if (File.Exists(root)) return [root];
        if (!Directory.Exists(root)) throw new CollectionException($"{root} does not exist");
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System };
        // Sorted so that runs, progress and summaries are reproducible.
        return Directory.EnumerateFiles(root, "*", options).Order(StringComparer.Ordinal).ToList();
    }

    private static string Extension(string path) => Path.GetExtension(path) is { Length: > 0 } e ? e : "no extension";
}
