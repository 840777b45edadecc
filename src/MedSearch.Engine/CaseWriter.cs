using System.Security.Cryptography;
using MedSearch.Imaging;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>An embedded image about to become a case: what the record holds besides the embedding.</summary>
/// <param name="Source">Where the image came from (a path, an upload's name), kept with the case and named in results.</param>
/// <param name="Annotation">The caller's labels and metadata; null when none were given, which keeps a stored case's labels.</param>
/// <param name="Facts">The file's own facts (<see cref="CaseFacts.From"/>).</param>
/// <param name="Thumbnail">A PNG of the embedded image, longest side at most 128 pixels.</param>
/// <param name="PixelSha256">The embedded image's <see cref="PixelImage.PixelSha256"/>.</param>
public sealed record CaseDraft(string Key, string Source, byte[] Sha256, int Width, int Height, CaseAnnotation? Annotation,
    IReadOnlyDictionary<string, string> Facts, byte[] Thumbnail, byte[] PixelSha256)
{
    /// <summary>The draft of <paramref name="image"/>; made where the image is decoded, so the full-size pixels need not wait for the encoder.</summary>
    public static CaseDraft Of(string key, string source, byte[] sha256, PixelImage image, CaseAnnotation? annotation, IReadOnlyDictionary<string, string> facts) =>
        new(key, source, sha256, image.Width, image.Height, annotation, facts, image.ToThumbnailPng(), image.PixelSha256());
}

/// <summary>What became of one uploaded file; <paramref name="Key"/> is set when a case holds it (stored, updated or unchanged).</summary>
public sealed record IngestItemResult(ItemOutcome Outcome, string? Key, string? Reason = null);

/// <summary>
/// How one image becomes a case, shared by `medsearch index` (files on disk, embedded in batches) and the gRPC
/// ingest (uploaded bytes, one at a time), so that both key, de-duplicate, label and record a case alike.
/// </summary>
public static class CaseWriter
{
    /// <summary>Key prefix of uploaded non-DICOM files: the client's name for the file follows it.</summary>
    public const string IngestPrefix = "ingest:";

    /// <summary>The key of a file: its SOP Instance UID when it is DICOM with one, wherever the bytes came from; else <paramref name="otherwise"/>.</summary>
    public static string KeyOf(ReadOnlyMemory<byte> bytes, string source, string otherwise) =>
        ImageReader.Detect(bytes.Span) == ImageFormat.Dicom && ImageReader.PeekSopInstanceUid(bytes, source) is { } uid
            ? CaseId.SopKey(uid)
            : otherwise;

    /// <summary>
    /// When <paramref name="key"/> is stored with the same bytes embedded by the collection's model, nothing needs
    /// embedding again: a changed annotation is applied in place (<see cref="ItemOutcome.Updated"/>), otherwise
    /// nothing is written (<see cref="ItemOutcome.Unchanged"/>). Null when the image must be embedded.
    /// </summary>
    public static ItemOutcome? Reuse(Collection collection, string key, byte[] sha256, CaseAnnotation? annotation) =>
        Reuse(collection, key, sha256, _ => annotation);

    /// <summary>
    /// <see cref="Reuse(Collection, string, byte[], CaseAnnotation?)"/> with the annotation chosen from the stored case,
    /// for a caller whose annotation depends on it (labels.csv's study rows, found through the case's Study Instance UID).
    /// <paramref name="annotationOf"/> is called only when the stored case can be reused.
    /// </summary>
    public static ItemOutcome? Reuse(Collection collection, string key, byte[] sha256, Func<CaseRecord, CaseAnnotation?> annotationOf)
    {
        if (!collection.TryGetCase(CaseId.FromKey(key), out var stored) || stored.Key != key
            || stored.ModelId != collection.ModelId || !stored.ContentSha256.Span.SequenceEqual(sha256))
            return null;
        var annotation = annotationOf(stored);
        if (annotation is null || SameAnnotation(stored, annotation)) return ItemOutcome.Unchanged;
        var updated = stored.Clone();
        ApplyAnnotation(updated, annotation, stored.Metadata);
        collection.Annotate(updated);
        return ItemOutcome.Updated;
    }

    /// <summary>Stores <paramref name="draft"/> with its embedding, new or replacing the case of the same key.</summary>
    /// <returns><see cref="ItemOutcome.Indexed"/>, <see cref="ItemOutcome.Updated"/> (with why), or <see cref="ItemOutcome.Failed"/> with the collection's refusal.</returns>
    public static (ItemOutcome Outcome, string? Reason) Store(Collection collection, CaseDraft draft, ReadOnlySpan<float> embedding, long indexedUnixMs)
    {
        ulong id = CaseId.FromKey(draft.Key);
        bool existed = collection.TryGetCase(id, out var previous);
        var record = new CaseRecord
        {
            Id = id,
            Key = draft.Key,
            Source = draft.Source,
            ModelId = collection.ModelId,
            ContentSha256 = Google.Protobuf.ByteString.CopyFrom(draft.Sha256),
            IndexedUnixMs = indexedUnixMs,
            Width = draft.Width,
            Height = draft.Height,
            Thumbnail = Google.Protobuf.ByteString.CopyFrom(draft.Thumbnail),
            PixelSha256 = Google.Protobuf.ByteString.CopyFrom(draft.PixelSha256),
        };
        record.Embedding.Add(embedding.ToArray());
        if (draft.Annotation is not null) ApplyAnnotation(record, draft.Annotation, draft.Facts);
        else
        {
            // No annotation this time: keep the labels an earlier run recorded rather than erase them.
            foreach (var (key, value) in draft.Facts) record.Metadata[key] = value;
            if (previous is not null)
            {
                record.Labels.Add(previous.Labels);
                foreach (var (key, value) in previous.Metadata) record.Metadata.TryAdd(key, value);
            }
        }
        try
        {
            collection.Put(record, previous);
        }
        catch (CollectionException e)
        {
            return (ItemOutcome.Failed, e.Message);
        }
        return !existed ? (ItemOutcome.Indexed, null)
            : previous!.Source == draft.Source ? (ItemOutcome.Updated, "file content changed")
            : (ItemOutcome.Updated, $"same key {draft.Key} as {previous.Source}, which it replaces");
    }

    /// <summary>
    /// Reads, embeds and stores one uploaded file as `medsearch index` would a file on disk: the key is
    /// `sop:&lt;SOP Instance UID&gt;` for DICOM, else `ingest:&lt;name&gt;`; a multi-frame instance is its middle frame.
    /// Labels and metadata given without labels keep the stored case's labels: an upload cannot tell "no labels"
    /// from "remove the labels", and removing is what UpdateLabels is for.
    /// The write is not durable until the caller's next <see cref="Collection.Checkpoint"/>.
    /// </summary>
    public static IngestItemResult Ingest(Collection collection, string name, ReadOnlyMemory<byte> bytes, CaseAnnotation? annotation)
    {
        string key;
        ImageInput input;
        try
        {
            key = KeyOf(bytes, name, IngestPrefix + name);
        }
        catch (Exception e) when (FailureOf(e) is { } failure)
        {
            return new IngestItemResult(failure.Outcome, null, failure.Reason);
        }
        var sha = SHA256.HashData(bytes.Span);
        if (annotation is { Labels.Count: 0 } && collection.TryGetCase(CaseId.FromKey(key), out var stored) && stored.Key == key)
            annotation = annotation with { Labels = [.. stored.Labels] };
        if (Reuse(collection, key, sha, annotation) is { } kept)
            return new IngestItemResult(kept, key, kept == ItemOutcome.Updated ? LabelsChanged : null);
        try
        {
            input = ImageReader.Read(bytes, name, collection.ReadOptions);
        }
        catch (Exception e) when (FailureOf(e) is { } failure)
        {
            return new IngestItemResult(failure.Outcome, null, failure.Reason);
        }

        // The collection reads one frame per instance (the middle one), so the first frame is the case.
        var image = input.Frames[0].Image;
        float[] embedding;
        try
        {
            embedding = collection.Embed(image);
        }
        catch (ArgumentException e)
        {
            return new IngestItemResult(ItemOutcome.Failed, null, NotEmbeddable(e));
        }
        var draft = CaseDraft.Of(key, name, sha, image, annotation, CaseFacts.From(input));
        var (outcome, reason) = Store(collection, draft, embedding, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        return new IngestItemResult(outcome, outcome == ItemOutcome.Failed ? null : key, reason);
    }

    /// <summary>Why a reused case was updated.</summary>
    public const string LabelsChanged = "labels or metadata changed";

    /// <summary>The reason given for an image the encoder refuses (non-finite pixels).</summary>
    public static string NotEmbeddable(ArgumentException e) => $"cannot be embedded: {e.Message}";

    /// <summary>
    /// What reading a file failed with, as the file's outcome: not an image is skipped, anything else fails that one
    /// file with the reason. Null for cancellation, which must stop the whole job.
    /// </summary>
    public static (ItemOutcome Outcome, string Reason)? FailureOf(Exception e) => e switch
    {
        OperationCanceledException => null,
        NotAnImageException n => (ItemOutcome.Skipped, n.Reason),
        ImageDecodeException d => (ItemOutcome.Failed, d.Reason),
        IOException or UnauthorizedAccessException => (ItemOutcome.Failed, $"cannot be read: {e.Message}"),
        // A decoder bug must cost one file, not an hours-long bulk job; the type and message say where to look.
        _ => (ItemOutcome.Failed, $"internal error while decoding ({e.GetType().Name}: {e.Message}); please report it"),
    };

    private static bool SameAnnotation(CaseRecord stored, CaseAnnotation annotation) =>
        stored.Labels.SequenceEqual(annotation.Labels)
        && annotation.Metadata.All(p => stored.Metadata.TryGetValue(p.Key, out var v) && v == p.Value);

    /// <summary>The annotation's labels; metadata = the file's own facts, then the annotation's (a curator's word wins).</summary>
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
}
