using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using MedSearch.Dicom;
using MedSearch.Imaging;
using MedSearch.Storage;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

public sealed record ReindexOptions
{
    /// <summary>The data directory whose cases are re-embedded; it is only read.</summary>
    public required string From { get; init; }

    /// <summary>The data directory the re-embedded cases go to: new, or one an interrupted reindex left.</summary>
    public required string To { get; init; }

    /// <summary>The new encoder (<see cref="CollectionOptions.ModelPath"/>, device, batch size) and the new collection's settings.</summary>
    public required CollectionOptions Collection { get; init; }

    public PipelineOptions Pipeline { get; init; } = new();

    /// <summary>
    /// The frame a multi-frame instance stored as one case was indexed with (the store does not record it); a
    /// case stored per frame (<c>--frames all</c>) names its frame in its key.
    /// </summary>
    public FrameSelection Frames { get; init; } = FrameSelection.Middle;

    /// <summary>How often progress is made durable; what a crash can cost at most.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(60);
}

public sealed class ReindexSummary
{
    /// <summary>Cases embedded with the new model and stored in the new collection by this run.</summary>
    public int Reindexed { get; internal set; }

    /// <summary>Cases an earlier, interrupted run had already re-embedded.</summary>
    public int AlreadyDone { get; internal set; }

    /// <summary>Cases that could not be re-embedded (file gone, changed or unreadable), each with its reason; not copied.</summary>
    public List<ItemResult> Failed { get; } = [];

    public long Total { get; internal set; }
    public TimeSpan Elapsed { get; internal set; }
    public bool Cancelled { get; internal set; }
}

/// <summary>
/// `medsearch reindex`: re-embeds every case of one data directory with another model into a new data
/// directory. The store keeps no pixels, so each case's file is read again from its <c>source</c> path and
/// must still hold the bytes that were indexed (its sha256 is checked); labels, metadata, key and id are
/// carried over unchanged. A case whose file is gone or changed is reported and left out, never silently
/// dropped. The old directory is only read and stays usable; switching to the new one is the operator's
/// <c>--data</c>. An interrupted run resumes: cases already in the new directory are not embedded again.
/// </summary>
public static class ReindexJob
{
    private const string FrameKeyMarker = "#frame=";

    /// <summary>What a decode worker needs of an old case; the rest is read back from the old store at commit.</summary>
    /// <summary>A case to re-embed; <see cref="PixelSha256"/> is filled in when its file is read again, for cases stored before pixel hashes were.</summary>
    private sealed record OldCase(ulong Id, string Key, string Source, byte[] Sha256)
    {
        public byte[]? PixelSha256 { get; set; }
    }

    public static async Task<ReindexSummary> RunAsync(ReindexOptions options, Action<string>? log = null,
        IProgress<IndexProgress>? progress = null, CancellationToken cancellation = default)
    {
        log ??= _ => { };
        var from = Path.GetFullPath(options.From);
        var to = Path.GetFullPath(options.To);
        if (from == to)
            throw new CollectionException($"--to {to} is the data directory being re-embedded; give a new directory (reindex never changes the old one)");
        if (!Directory.Exists(from))
            throw new CollectionException($"data directory {from} does not exist");
        using var oldDirectory = DataDirectory.Open(from);
        if (CollectionSettings.Load(oldDirectory.SettingsFile) is null)
            throw new CollectionException($"{from} is not a MedSearch data directory (it has no {Path.GetFileName(oldDirectory.SettingsFile)})");
        using var oldStore = CaseStore.Open(oldDirectory.StorePath, options.Collection.Store);
        CarryPatientKey(from, to);
        using var collection = Collection.Open(to, options.Collection, log);

        // Ids, keys and paths only: a few hundred bytes a case, where whole records would hold the old vectors.
        var cases = oldStore.Scan().Select(r => new OldCase(r.Id, r.Key, r.Source, r.ContentSha256.ToByteArray()))
            .OrderBy(c => c.Key, StringComparer.Ordinal).ToList();
        var summary = new ReindexSummary { Total = cases.Count };
        var watch = Stopwatch.StartNew();
        int done = 0;
        var summaryLock = new Lock();
        void Done(ItemResult? failure, bool reindexed)
        {
            lock (summaryLock)
            {
                done++;
                if (failure is not null) summary.Failed.Add(failure);
                else if (reindexed) summary.Reindexed++;
                else summary.AlreadyDone++;
            }
        }
        void Report()
        {
            double rate = done / Math.Max(watch.Elapsed.TotalSeconds, 1e-3);
            progress?.Report(new IndexProgress(done, cases.Count, rate, rate > 0 ? TimeSpan.FromSeconds((cases.Count - done) / rate) : null));
        }

        var pipeline = new EmbeddingPipeline<OldCase>(collection.Encoder, options.Pipeline);
        var lastReport = Stopwatch.StartNew();
        var sinceCheckpoint = Stopwatch.StartNew();
        try
        {
            await pipeline.RunAsync(cases, old => Prepare(collection, pipeline, old, options.Frames, Done),
                (batch, vectors) =>
                {
                    long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                    for (int i = 0; i < batch.Count; i++)
                    {
                        if (!oldStore.TryGet(batch[i].Id, out var record))
                        {
                            Done(new ItemResult(batch[i].Source, ItemOutcome.Failed, "removed from the old store during the run"), false);
                            continue;
                        }
                        record.ModelId = collection.ModelId;
                        record.IndexedUnixMs = now;
                        record.Embedding.Clear();
                        record.Embedding.Add(vectors.AsSpan(i * collection.Dimensions, collection.Dimensions).ToArray());
                        if (batch[i].PixelSha256 is { } pixels) record.PixelSha256 = Google.Protobuf.ByteString.CopyFrom(pixels);
                        collection.Put(record);
                        Done(null, true);
                    }
                    if (lastReport.ElapsedMilliseconds >= 200) { Report(); lastReport.Restart(); }
                    if (sinceCheckpoint.Elapsed >= options.CheckpointInterval) { collection.Checkpoint(saveIndex: false); sinceCheckpoint.Restart(); }
                }, cancellation);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            summary.Cancelled = true;
        }
        finally
        {
            // What was re-embedded becomes durable, so that a re-run resumes after it.
            collection.Checkpoint();
        }
        Report();
        summary.Failed.Sort((a, b) => StringComparer.Ordinal.Compare(a.Path, b.Path));
        summary.Elapsed = watch.Elapsed;
        return summary;
    }

    /// <summary>
    /// Patient hashes are keyed per data directory; the copied metadata holds the old directory's hashes, so the
    /// new one must hash new queries and deletes with the same key.
    /// </summary>
    private static void CarryPatientKey(string from, string to)
    {
        var oldKey = Path.Combine(from, PatientHasher.KeyFileName);
        var newKey = Path.Combine(to, PatientHasher.KeyFileName);
        if (!File.Exists(oldKey)) return;
        if (File.Exists(newKey))
        {
            if (!File.ReadAllBytes(oldKey).AsSpan().SequenceEqual(File.ReadAllBytes(newKey)))
                throw new CollectionException(
                    $"{to} already has another {PatientHasher.KeyFileName} than {from}: its patient hashes would not match the copied cases'; give a new directory");
            return;
        }
        Directory.CreateDirectory(to);
        File.Copy(oldKey, newKey);
    }

    /// <summary>Reads one old case's file again and preprocesses the frame it was indexed from; reports it when it cannot.</summary>
    private static List<EmbeddingPipeline<OldCase>.Prepared> Prepare(Collection collection, EmbeddingPipeline<OldCase> pipeline,
        OldCase old, FrameSelection frames, Action<ItemResult?, bool> done)
    {
        // Done by an earlier, interrupted run: the same bytes already embedded by the new model.
        if (CaseWriter.Reuse(collection, old.Key, old.Sha256, annotation: null) is not null)
        {
            done(null, false);
            return [];
        }

        var (path, frameIndex) = FileOf(old);
        ItemResult Failure(string reason) => new(old.Source, ItemOutcome.Failed, reason);
        try
        {
            if (!File.Exists(path))
            {
                done(Failure($"its file is gone ({path}); the case is not in the new collection"), false);
                return [];
            }
            var bytes = File.ReadAllBytes(path);
            if (!SHA256.HashData(bytes).AsSpan().SequenceEqual(old.Sha256))
            {
                done(Failure("its file changed since it was indexed (sha256 differs); `medsearch index` it again to store what it holds now"), false);
                return [];
            }
            var input = ImageReader.Read(bytes, path, collection.ReadOptions with { Frames = frameIndex is null ? frames : FrameSelection.All });
            var frame = frameIndex is null ? input.Frames[0] : input.Frames.FirstOrDefault(f => f.FrameIndex == frameIndex);
            if (frame is null)
            {
                done(Failure($"its file has no frame {frameIndex} any more"), false);
                return [];
            }
            old.PixelSha256 = frame.Image.PixelSha256();
            return [new(old, pipeline.Preprocess(frame.Image))];
        }
        catch (ArgumentException e)
        {
            done(Failure(CaseWriter.NotEmbeddable(e)), false);
        }
        catch (Exception e) when (e is ImageDecodeException or IOException or UnauthorizedAccessException)
        {
            done(Failure(CaseWriter.FailureOf(e)!.Value.Reason), false);
        }
        return [];
    }

    /// <summary>The file a case came from and, for a case stored per frame, which frame.</summary>
    /// <remarks>`index` stores a per-frame case's source as "PATH [frame N]" and its key as "KEY#frame=N".</remarks>
    private static (string Path, int? Frame) FileOf(OldCase old)
    {
        int marker = old.Key.LastIndexOf(FrameKeyMarker, StringComparison.Ordinal);
        if (marker < 0) return (old.Source, null);
        int frame = int.Parse(old.Key.AsSpan(marker + FrameKeyMarker.Length), NumberStyles.None, CultureInfo.InvariantCulture);
        var suffix = $" [frame {frame}]";
        var path = old.Source.EndsWith(suffix, StringComparison.Ordinal) ? old.Source[..^suffix.Length] : old.Source;
        return (path, frame);
    }
}
