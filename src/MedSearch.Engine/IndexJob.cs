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
    /// <summary>Which frames of a multi-frame DICOM instance become cases.</summary>
    public FrameSelection Frames { get; init; } = FrameSelection.Middle;
}

public enum ItemOutcome { Indexed, Updated, Unchanged, Skipped, Failed }

/// <summary>What happened to one file (or, when several frames of it are cases, one frame).</summary>
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
    /// <summary>One image ready to embed: a PNG/JPEG file or one selected frame of a DICOM instance.</summary>
    private sealed record PendingCase(string Path, string Key, byte[] Sha256, PixelImage Image, CaseAnnotation? Annotation,
        IReadOnlyDictionary<string, string> Facts);

    public static async Task<IndexSummary> RunAsync(Collection collection, IndexJobOptions options,
        IProgress<IndexProgress>? progress = null, CancellationToken cancellation = default)
    {
        var root = Path.GetFullPath(options.Root);
        var labels = options.LabelsPath is null ? null : LabelsFile.Load(options.LabelsPath);
        var labelsPath = options.LabelsPath is null ? null : Path.GetFullPath(options.LabelsPath);
        var files = EnumerateFiles(root).Where(f => f != labelsPath).ToList();
        var summary = new IndexSummary();
        var watch = Stopwatch.StartNew();

        int total = files.Count, done = 0;
        void Report()
        {
            double rate = done / Math.Max(watch.Elapsed.TotalSeconds, 1e-3);
            progress?.Report(new IndexProgress(done, total, rate, rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : null));
        }

        var results = new List<ItemResult>();
        var keysSeen = new HashSet<string>(StringComparer.Ordinal);
        var resultsLock = new Lock();
        void Record(ItemResult result, string? key, bool fileDone)
        {
            lock (resultsLock)
            {
                results.Add(result);
                if (key is not null) keysSeen.Add(key);
                if (fileDone) done++;
            }
        }

        // Bounded so that memory stays flat on folders of any size: decoders wait for the encoder, never the reverse.
        var decoded = Channel.CreateBounded<(PendingCase Case, bool LastOfFile)>(new BoundedChannelOptions(options.BatchSize * 4) { SingleReader = true });
        var producers = Task.Run(async () =>
        {
            try
            {
                await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = options.DecodeWorkers, CancellationToken = cancellation },
                    async (path, ct) =>
                    {
                        var cases = Prepare(collection, root, path, options.Frames, labels, Record);
                        for (int i = 0; i < cases.Count; i++) await decoded.Writer.WriteAsync((cases[i], i == cases.Count - 1), ct);
                    });
            }
            finally
            {
                decoded.Writer.Complete();
            }
        }, CancellationToken.None);

        var batch = new List<(PendingCase Case, bool LastOfFile)>(options.BatchSize);
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
        {
            summary.UnmatchedLabelRows.AddRange(labels.Keys.Where(k => !keysSeen.Contains(k)).Order(StringComparer.Ordinal));
            summary.WithoutLabels = keysSeen.Count(k => labels.Find(k) is null);
        }
        summary.Elapsed = watch.Elapsed;
        return summary;
    }

    /// <summary>Reads, recognises and decodes one file; reports it at once when there is nothing to embed.</summary>
    private static List<PendingCase> Prepare(Collection collection, string root, string path, FrameSelection frames,
        LabelsFile? labels, Action<ItemResult, string?, bool> report)
    {
        try
        {
            // Sniff before reading a whole file that may be a video or an archive sitting among the images.
            if (!ImageReader.ClaimsToBeImage(path) && ImageReader.Detect(ReadHead(path)) == ImageFormat.Unknown)
            {
                report(new ItemResult(path, ItemOutcome.Skipped, $"not an image ({Extension(path)}, no PNG, JPEG or DICOM signature)"), null, true);
                return [];
            }
            var bytes = File.ReadAllBytes(path);
            var sha = SHA256.HashData(bytes);
            var relative = File.Exists(root) ? Path.GetFileName(path) : Path.GetRelativePath(root, path);
            var baseKey = ImageReader.Detect(bytes) == ImageFormat.Dicom && ImageReader.PeekSopInstanceUid(bytes, path) is { } uid
                ? CaseId.SopKey(uid)
                : CaseId.FileKey(relative);

            if (IsUnchanged(collection, baseKey, sha, labels, path, report)) return [];

            var input = ImageReader.Read(bytes, path, collection.ReadOptions with { Frames = frames });
            var facts = CaseFacts.From(input);
            var cases = new List<PendingCase>(input.Frames.Count);
            foreach (var frame in input.Frames)
            {
                // One case per instance by default; with every frame selected, each frame is a case of its own.
                var key = frames == FrameSelection.All && input.Frames.Count > 1 ? $"{baseKey}#frame={frame.FrameIndex}" : baseKey;
                var name = key == baseKey ? path : $"{path} [frame {frame.FrameIndex}]";
                var annotation = labels?.Find(key) ?? labels?.Find(baseKey);
                cases.Add(new PendingCase(name, key, sha, frame.Image, annotation, facts));
            }
            return cases;
        }
        catch (NotAnImageException e)
        {
            report(new ItemResult(path, ItemOutcome.Skipped, e.Reason), null, true);
        }
        catch (ImageDecodeException e)
        {
            report(new ItemResult(path, ItemOutcome.Failed, e.Reason), null, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            report(new ItemResult(path, ItemOutcome.Failed, $"cannot be read: {e.Message}"), null, true);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A decoder bug must cost one file, not an hours-long bulk job; the type and message say where to look.
            report(new ItemResult(path, ItemOutcome.Failed, $"internal error while decoding ({e.GetType().Name}: {e.Message}); please report it"), null, true);
        }
        return [];
    }

    /// <summary>
    /// The same bytes embedded by the same model are not embedded again; only a changed labels.csv row is applied.
    /// Multi-frame cases are checked through their instance key, the one every selection stores first.
    /// </summary>
    private static bool IsUnchanged(Collection collection, string key, byte[] sha, LabelsFile? labels, string path,
        Action<ItemResult, string?, bool> report)
    {
        if (!collection.TryGetCase(CaseId.FromKey(key), out var stored) || stored.Key != key
            || stored.ModelId != collection.ModelId || !stored.ContentSha256.Span.SequenceEqual(sha))
            return false;
        var annotation = labels?.Find(key);
        if (annotation is null || SameAnnotation(stored, annotation))
        {
            report(new ItemResult(path, ItemOutcome.Unchanged), key, true);
        }
        else
        {
            var updated = stored.Clone();
            ApplyAnnotation(updated, annotation, stored.Metadata);
            collection.Annotate(updated);
            report(new ItemResult(path, ItemOutcome.Updated, "labels or metadata changed"), key, true);
        }
        return true;
    }

    private static void Commit(Collection collection, List<(PendingCase Case, bool LastOfFile)> batch, Action<ItemResult, string?, bool> report)
    {
        if (batch.Count == 0) return;
        var images = batch.Select(b => b.Case.Image).ToArray();
        var vectors = new float[images.Length * collection.Dimensions];
        collection.Encoder.Embed(images, vectors);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < batch.Count; i++)
        {
            var (item, last) = batch[i];
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
            if (item.Annotation is not null) ApplyAnnotation(record, item.Annotation, item.Facts);
            else
            {
                // No labels.csv row this time: keep the labels an earlier run recorded rather than erase them.
                foreach (var (key, value) in item.Facts) record.Metadata[key] = value;
                if (previous is not null)
                {
                    record.Labels.Add(previous.Labels);
                    foreach (var (key, value) in previous.Metadata) record.Metadata.TryAdd(key, value);
                }
            }
            try
            {
                collection.Put(record);
                report(new ItemResult(item.Path, existed ? ItemOutcome.Updated : ItemOutcome.Indexed, existed ? "file content changed" : null), item.Key, last);
            }
            catch (CollectionException e)
            {
                report(new ItemResult(item.Path, ItemOutcome.Failed, e.Message), null, last);
            }
        }
    }

    private static bool SameAnnotation(CaseRecord stored, CaseAnnotation annotation) =>
        stored.Labels.SequenceEqual(annotation.Labels)
        && annotation.Metadata.All(p => stored.Metadata.TryGetValue(p.Key, out var v) && v == p.Value);

    /// <summary>Labels from labels.csv; metadata = the file's own facts, then the CSV's columns (a curator's word wins).</summary>
    private static void ApplyAnnotation(CaseRecord record, CaseAnnotation annotation, IEnumerable<KeyValuePair<string, string>> facts)
    {
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in facts) merged[key] = value;
        foreach (var (key, value) in annotation.Metadata) merged[key] = value;
        record.Labels.Clear();
        record.Labels.Add(annotation.Labels);
        record.Metadata.Clear();
        record.Metadata.Add(merged);
    }

    private static byte[] ReadHead(string path)
    {
        using var stream = File.OpenRead(path);
        var head = new byte[ImageReader.SignatureLength];
        return head[..stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
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
