using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using MedSearch.Dicom;
using MedSearch.Imaging;

namespace MedSearch.Engine;

public sealed record IndexJobOptions
{
    /// <summary>Folder (walked recursively) or single file to index.</summary>
    public required string Root { get; init; }
    public string? LabelsPath { get; init; }
    public int BatchSize { get; init; } = 16;
    /// <summary>How long a batch may wait to fill once it has an image (see <see cref="PipelineOptions.BatchWait"/>).</summary>
    public TimeSpan BatchWait { get; init; } = new PipelineOptions().BatchWait;
    public int DecodeWorkers { get; init; } = Math.Max(1, Environment.ProcessorCount);
    /// <summary>Which frames of a multi-frame DICOM instance become cases.</summary>
    public FrameSelection Frames { get; init; } = FrameSelection.Middle;

    /// <summary>How often a long run makes its progress durable; what a crash can cost at most.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A file to which the key of every stored case is appended once a checkpoint covers it: the job's
    /// acknowledgement, which a crash cannot take back.
    /// </summary>
    public string? ReceiptPath { get; init; }
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
    /// <summary>labels.csv rows that matched no file of this run (typos in paths show up here); a study row as `study:&lt;uid&gt;`.</summary>
    public List<string> UnmatchedLabelRows { get; } = [];
    public int WithoutLabels { get; internal set; }
    /// <summary>Slices the series of this run's files left out or ordered by a fallback, each as "series UID: what".</summary>
    public List<string> SeriesProblems { get; } = [];
    public TimeSpan Elapsed { get; internal set; }
    public bool Cancelled { get; internal set; }
    /// <summary>The ingest pipeline's figures: batches, images, and how busy the encoder was.</summary>
    public PipelineStats Pipeline { get; internal set; } = new(TimeSpan.Zero, TimeSpan.Zero, 0, 0);
}

/// <summary>
/// `medsearch index`: walks a folder, decodes on several workers while the encoder embeds batches, and
/// commits each batch to the collection. Re-running it on the same folder re-embeds nothing that is already
/// stored with the same bytes and model; changed labels are applied in place.
/// </summary>
public static class IndexJob
{
    public static async Task<IndexSummary> RunAsync(Collection collection, IndexJobOptions options,
        IProgress<IndexProgress>? progress = null, CancellationToken cancellation = default)
    {
        var root = Path.GetFullPath(options.Root);
        var labels = options.LabelsPath is null ? null : LabelsFile.Load(options.LabelsPath);
        var labelsPath = options.LabelsPath is null ? null : Path.GetFullPath(options.LabelsPath);
        // Walked twice, once to count for the progress line, rather than held: a folder of any size costs its count.
        var files = EnumerateFiles(root).Where(f => f != labelsPath);
        var summary = new IndexSummary();
        var watch = Stopwatch.StartNew();

        int total = files.Count(), done = 0;
        void Report()
        {
            double rate = done / Math.Max(watch.Elapsed.TotalSeconds, 1e-3);
            progress?.Report(new IndexProgress(done, total, rate, rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : null));
        }

        // Only what the summary lists is kept per item: failures and skips, not every stored case.
        // With a labels file, every stored or unchanged case of this run → its Study Instance UID (null when it has
        // none), for the rows that matched nothing; and the series seen, for their problems.
        var keysSeen = labels is null ? null : new Dictionary<string, string?>(StringComparer.Ordinal);
        var seriesSeen = new SortedSet<string>(StringComparer.Ordinal);
        var awaitingCheckpoint = new HashSet<string>(StringComparer.Ordinal);
        var resultsLock = new Lock();
        void Record(ItemResult result, string? key, bool fileDone, string? study, string? series)
        {
            lock (resultsLock)
            {
                switch (result.Outcome)
                {
                    case ItemOutcome.Indexed: summary.Indexed++; break;
                    case ItemOutcome.Updated: summary.Updated++; break;
                    case ItemOutcome.Unchanged: summary.Unchanged++; break;
                    case ItemOutcome.Failed: summary.Failed.Add(result); break;
                    case ItemOutcome.Skipped: summary.Skipped.Add(result); break;
                }
                if (key is not null)
                {
                    awaitingCheckpoint.Add(key);
                    keysSeen?.TryAdd(key, study);
                }
                if (series is not null) seriesSeen.Add(series);
                if (fileDone) done++;
            }
        }

        using var receipt = options.ReceiptPath is null ? null : new FileStream(options.ReceiptPath, FileMode.Append, FileAccess.Write, FileShare.Read);
        var sinceCheckpoint = Stopwatch.StartNew();
        void Checkpoint(bool final)
        {
            // Taken before the checkpoint starts, so every key in it was written before the checkpoint: covered.
            string[] covered;
            lock (resultsLock)
            {
                covered = awaitingCheckpoint.ToArray();
                awaitingCheckpoint.Clear();
            }
            collection.Checkpoint(saveIndex: final);
            sinceCheckpoint.Restart();
            if (receipt is null || covered.Length == 0) return;
            receipt.Write(System.Text.Encoding.UTF8.GetBytes(string.Concat(covered.Select(k => k + "\n"))));
            receipt.Flush(flushToDisk: true);
        }

        var pipeline = new EmbeddingPipeline<(CaseDraft Case, bool LastOfFile)>(collection.Encoder,
            new PipelineOptions { BatchSize = options.BatchSize, BatchWait = options.BatchWait, DecodeWorkers = options.DecodeWorkers });
        var lastReport = Stopwatch.StartNew();
        try
        {
            await pipeline.RunAsync(files, path => Prepare(collection, pipeline, root, path, options.Frames, labels, Record),
                (batch, vectors) =>
                {
                    Commit(collection, batch, vectors, Record);
                    if (lastReport.ElapsedMilliseconds >= 200) { Report(); lastReport.Restart(); }
                    if (sinceCheckpoint.Elapsed >= options.CheckpointInterval) Checkpoint(final: false);
                }, cancellation);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            summary.Cancelled = true;
        }
        finally
        {
            // Whatever was committed becomes durable, so a re-run resumes instead of starting over.
            Checkpoint(final: true);
        }
        summary.Pipeline = pipeline.Stats;
        Report();

        summary.Failed.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        summary.Skipped.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        if (labels is not null && keysSeen is not null)
        {
            var studiesSeen = keysSeen.Values.OfType<string>().ToHashSet(StringComparer.Ordinal);
            summary.UnmatchedLabelRows.AddRange(labels.Keys.Where(k => !keysSeen.ContainsKey(k))
                .Concat(labels.StudyInstanceUids.Where(u => !studiesSeen.Contains(u)).Select(u => LabelsFile.StudyPrefix + u))
                .Order(StringComparer.Ordinal));
            summary.WithoutLabels = keysSeen.Count(k => labels.For(k.Key, k.Value) is null);
        }
        foreach (var uid in seriesSeen)
            summary.SeriesProblems.AddRange(collection.VolumeProblems(VolumeLevel.Series, uid).Select(p => $"series {uid}: {p}"));
        summary.Elapsed = watch.Elapsed;
        return summary;
    }

    /// <summary>
    /// Reads, recognises, decodes and preprocesses one file, a frame at a time: each frame's model input is yielded
    /// as soon as it is made, so that the pipeline's bounded queue, not the file's frame count, bounds memory (with
    /// every frame selected, an enhanced CT of 2,000 slices is gigabytes as floats). Reports the file at once when
    /// there is nothing to embed; a frame that cannot be decoded or embedded fails the file there, and the frames
    /// before it, cases of their own, are still stored.
    /// </summary>
    private static IEnumerable<EmbeddingPipeline<(CaseDraft, bool)>.Prepared> Prepare(Collection collection, EmbeddingPipeline<(CaseDraft, bool)> pipeline,
        string root, string path, FrameSelection frames, LabelsFile? labels, Report report)
    {
        if (Open(collection, root, path, frames, labels, report) is not { } file) yield break;
        try
        {
            for (int position = 0; position < file.Frames.FrameIndexes.Count; position++)
            {
                if (PrepareFrame(pipeline, file, position, frames, labels, report) is not { } prepared) yield break;
                yield return prepared;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(file.Buffer);
        }
    }

    /// <summary>A file read into a pooled buffer (its frames decode from it), with what every frame's case shares.</summary>
    private sealed record OpenedFile(string Path, byte[] Buffer, byte[] Sha256, string BaseKey, ImageFrames Frames,
        IReadOnlyDictionary<string, string> Facts, string? Study);

    /// <summary>Reads and recognises one file and selects its frames; null when it has been reported (not an image, unchanged, unreadable).</summary>
    private static OpenedFile? Open(Collection collection, string root, string path, FrameSelection frames, LabelsFile? labels, Report report)
    {
        byte[]? buffer = null;
        try
        {
            // Sniff before reading a whole file that may be a video or an archive sitting among the images.
            if (!ImageReader.ClaimsToBeImage(path) && ImageReader.Detect(ReadHead(path)) == ImageFormat.Unknown)
            {
                report(new ItemResult(path, ItemOutcome.Skipped, $"not an image ({Extension(path)}, no PNG, JPEG or DICOM signature)"), null, true, null, null);
                return null;
            }
            (buffer, int length) = ReadPooled(path);
            var bytes = buffer.AsMemory(0, length);
            var sha = SHA256.HashData(bytes.Span);
            var relative = Path.GetRelativePath(KeyRoot(root), path);
            var baseKey = CaseWriter.KeyOf(bytes, path, CaseId.FileKey(relative));
            if (IsUnchanged(collection, baseKey, sha, labels, path, report)) return null;

            var selected = ImageReader.Open(bytes, path, collection.ReadOptions with { Frames = frames });
            var facts = CaseFacts.From(selected);
            var file = new OpenedFile(path, buffer, sha, baseKey, selected, facts, facts.GetValueOrDefault("study_instance_uid"));
            buffer = null;
            return file;
        }
        catch (Exception e) when (CaseWriter.FailureOf(e) is { } failure)
        {
            report(new ItemResult(path, failure.Outcome, failure.Reason), null, true, null, null);
            return null;
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The selected frame at <paramref name="position"/> decoded and preprocessed; null when it failed the file (reported).</summary>
    private static EmbeddingPipeline<(CaseDraft, bool)>.Prepared? PrepareFrame(EmbeddingPipeline<(CaseDraft, bool)> pipeline, OpenedFile file,
        int position, FrameSelection frames, LabelsFile? labels, Report report)
    {
        int count = file.Frames.FrameIndexes.Count;
        int frameIndex = file.Frames.FrameIndexes[position];
        // One case per instance by default; with every frame selected, each frame is a case of its own.
        var key = frames == FrameSelection.All && count > 1 ? $"{file.BaseKey}#frame={frameIndex}" : file.BaseKey;
        var name = key == file.BaseKey ? file.Path : $"{file.Path} [frame {frameIndex}]";
        PixelImage image;
        try
        {
            image = file.Frames.Decode(position).Image;
        }
        catch (Exception e) when (CaseWriter.FailureOf(e) is { } failure)
        {
            report(new ItemResult(name, failure.Outcome, failure.Reason), null, true, null, null);
            return null;
        }
        float[] modelInput;
        try
        {
            modelInput = pipeline.Preprocess(image);
        }
        catch (ArgumentException e)
        {
            report(new ItemResult(name, ItemOutcome.Failed, CaseWriter.NotEmbeddable(e)), null, true, null, null);
            return null;
        }
        // The frame's own row, else the instance's, else its study's: the more specific row wins.
        var annotation = labels?.Find(key) ?? labels?.For(file.BaseKey, file.Study);
        var pending = CaseDraft.Of(key, name, file.Sha256, image, annotation, file.Facts);
        return new((pending, position == count - 1), modelInput);
    }

    /// <summary>
    /// The same bytes embedded by the same model are not embedded again; only a changed labels.csv row is applied.
    /// Multi-frame cases are checked through their instance key, the one every selection stores first. The row is
    /// looked up as <see cref="Prepare"/> does, the study's through the stored case's Study Instance UID: the same
    /// bytes, so the same facts as a fresh read would give.
    /// </summary>
    private static bool IsUnchanged(Collection collection, string key, byte[] sha, LabelsFile? labels, string path,
        Report report)
    {
        string? study = null, series = null;
        var outcome = CaseWriter.Reuse(collection, key, sha, stored =>
        {
            study = stored.Metadata.GetValueOrDefault("study_instance_uid");
            series = stored.Metadata.GetValueOrDefault("series_instance_uid");
            return labels?.For(key, study);
        });
        if (outcome is null) return false;
        report(new ItemResult(path, outcome.Value, outcome == ItemOutcome.Updated ? CaseWriter.LabelsChanged : null), key, true, study, series);
        return true;
    }

    private static void Commit(Collection collection, IReadOnlyList<(CaseDraft Case, bool LastOfFile)> batch, float[] vectors,
        Report report)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < batch.Count; i++)
        {
            var (item, last) = batch[i];
            var (outcome, reason) = CaseWriter.Store(collection, item, vectors.AsSpan(i * collection.Dimensions, collection.Dimensions), now);
            bool stored = outcome != ItemOutcome.Failed;
            report(new ItemResult(item.Source, outcome, reason), stored ? item.Key : null, last,
                item.Facts.GetValueOrDefault("study_instance_uid"), stored ? item.Facts.GetValueOrDefault("series_instance_uid") : null);
        }
    }

    /// <summary>
    /// What became of a file or frame; <paramref name="key"/> (with its case's <paramref name="study"/> and
    /// <paramref name="series"/>) when a case holds it.
    /// </summary>
    private delegate void Report(ItemResult result, string? key, bool fileDone, string? study, string? series);

    /// <summary>
    /// The whole file in a pooled buffer: a radiograph's file is megabytes, and a fresh array per file would cost
    /// page faults on new memory and large-object collections in a job that reads thousands.
    /// </summary>
    private static (byte[] Buffer, int Length) ReadPooled(string path)
    {
        using var handle = File.OpenHandle(path);
        long size = RandomAccess.GetLength(handle);
        if (size > Array.MaxLength) throw new IOException($"{path} is {size:N0} bytes, larger than any image this reads");
        var buffer = ArrayPool<byte>.Shared.Rent((int)size);
        try
        {
            int length = 0, read;
            // A file that grows while it is read is taken as it was when opened; one that shrinks, as far as it goes.
            while (length < size && (read = RandomAccess.Read(handle, buffer.AsSpan(length, (int)size - length), length)) > 0) length += read;
            return (buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private static byte[] ReadHead(string path)
    {
        using var stream = File.OpenRead(path);
        var head = new byte[ImageReader.SignatureLength];
        return head[..stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
    }

    private static IEnumerable<string> EnumerateFiles(string root)
    {
        if (File.Exists(root)) return IsDicomDirectory(root) ? DicomDirectoryFiles(root) : [root];
        if (!Directory.Exists(root)) throw new CollectionException($"{root} does not exist");
        return Walk(root);
    }

    /// <summary>A new walk on each enumeration (the job walks twice: once to count).</summary>
    private static IEnumerable<string> Walk(string root)
    {
        // Below the top a folder that cannot be read is passed over, as a recursive walk does; the top itself must be read.
        if (Entries(root) is null) throw new CollectionException($"{root} cannot be read (permission denied)");
        var entered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in Walk(root, entered)) yield return file;
    }

    // Not IgnoreInaccessible: it also hides a folder that cannot be listed, which Entries must see to pass it over
    // (or, at the top, to refuse the run).
    private static readonly EnumerationOptions OneLevel = new()
    {
        RecurseSubdirectories = false, IgnoreInaccessible = false, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System,
    };

    /// <summary>
    /// Every file under <paramref name="folder"/> in ordinal order of the full path (so runs, progress and summaries
    /// are reproducible), one folder's entries in memory at a time. A folder sorts as its name plus the separator,
    /// which puts its files exactly where sorting all the full paths would. A linked folder is walked once, through
    /// the first path that reaches it: a link back up the tree would otherwise be walked until paths grew too long,
    /// every file indexed again under each longer path.
    /// </summary>
    private static IEnumerable<string> Walk(string folder, HashSet<string> entered)
    {
        if (RealFolder(folder) is not { } real || !entered.Add(real) || Entries(folder) is not { } entries) yield break;
        foreach (var (_, path, isFolder) in entries)
        {
            if (!isFolder) yield return path;
            else foreach (var file in Walk(path, entered)) yield return file;
        }
    }

    /// <summary>Where a linked folder leads (its full path otherwise); null for a link that leads nowhere or in a circle.</summary>
    private static string? RealFolder(string folder)
    {
        try
        {
            return new DirectoryInfo(folder).LinkTarget is null ? Path.GetFullPath(folder) : Directory.ResolveLinkTarget(folder, returnFinalTarget: true)?.FullName;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>One folder's files and folders, sorted; null when it cannot be read (as a recursive walk skips it).</summary>
    private static List<(string SortKey, string Path, bool IsFolder)>? Entries(string folder)
    {
        var entries = new List<(string SortKey, string Path, bool IsFolder)>();
        try
        {
            foreach (var file in Directory.EnumerateFiles(folder, "*", OneLevel)) entries.Add((Path.GetFileName(file), file, false));
            foreach (var sub in Directory.EnumerateDirectories(folder, "*", OneLevel))
                entries.Add((Path.GetFileName(sub) + Path.DirectorySeparatorChar, sub, true));
        }
        catch (Exception e) when (e is UnauthorizedAccessException or DirectoryNotFoundException)
        {
            return null;
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.SortKey, b.SortKey));
        return entries;
    }

    /// <summary>A DICOMDIR given as the path to index stands for the files it references.</summary>
    private static bool IsDicomDirectory(string path)
    {
        try
        {
            return DicomFile.HasSignature(ReadHead(path)) && DicomDirectory.Is(DicomFile.Open(path));
        }
        catch (DicomException)
        {
            return false;
        }
    }

    private static IReadOnlyList<string> DicomDirectoryFiles(string path)
    {
        try
        {
            return DicomDirectory.ReferencedFiles(path);
        }
        catch (DicomException e)
        {
            throw new CollectionException(e.Message, e);
        }
    }

    /// <summary>What keys of non-DICOM files are relative to: the folder indexed, or the folder of the file (or DICOMDIR) given.</summary>
    private static string KeyRoot(string root) => File.Exists(root) ? Path.GetDirectoryName(root)! : root;

    private static string Extension(string path) => Path.GetExtension(path) is { Length: > 0 } e ? e : "no extension";
}
