using MedSearch.Dicom;
using MedSearch.Embedding;
using MedSearch.Imaging;

namespace MedSearch.Engine;

/// <summary>
/// Turns query files and caller embeddings into queries exactly as indexing reads and embeds files: the same
/// encoder, read options (with the patient-hash key) and volume pooling. Needs no stored case, so a server can
/// make the query on its own machine before asking any part of the case space.
/// </summary>
public sealed class QueryReader(ImageEncoder encoder, ImageReadOptions readOptions, VolumeOptions volumes)
{
    /// <summary>Most files one series or study query may hold: a whole CT study, not an archive.</summary>
    public const int MaxQueryFiles = 4096;

    public ImageEncoder Encoder { get; } = encoder;
    public string ModelId => Encoder.Manifest.ModelId;
    public int Dimensions => Encoder.Dimensions;

    /// <summary>The series and study vector length: <see cref="Dimensions"/>, doubled by mean-max pooling.</summary>
    public int VolumeDimensions => Volumes.DimensionsFor(Dimensions);

    /// <summary>How series and studies are pooled.</summary>
    public VolumeOptions Volumes { get; } = volumes;

    /// <summary>How files are read: the same for indexing and querying, with the patient-hash key.</summary>
    public ImageReadOptions ReadOptions { get; } = readOptions;

    /// <summary>
    /// Decodes and embeds a query image exactly as indexing does; its DICOM header gives the patient and study.
    /// <paramref name="cancellation"/> (a call's deadline or its caller giving up) is looked at before the decode
    /// and again before the embedding, the two costly steps; the embedding itself is one ONNX Runtime run, which
    /// cannot be interrupted once started.
    /// </summary>
    /// <exception cref="ImageDecodeException">The bytes are not a readable image; the message says why.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled before the decode or the embedding.</exception>
    public Query Image(ReadOnlyMemory<byte> bytes, string name, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        var input = ImageReader.Read(bytes, name, ReadOptions);
        var image = input.Frames[0].Image;
        cancellation.ThrowIfCancellationRequested();
        return new Query(Encoder.Embed(image), input.Dicom?.PatientHash, input.Dicom?.StudyInstanceUid, Image: image);
    }

    /// <summary>
    /// DICOM files of one series (or one study) as the query, ordered, filtered, sampled, embedded and pooled as
    /// stored series are. Headers are read first and only the sampled slices are decoded, so a 1,000-slice CT
    /// costs 16 decodes. Files that cannot be read, and slices left out, are named in <paramref name="skipped"/>.
    /// <paramref name="cancellation"/> is looked at before each file's header, each slice's decode and each series'
    /// embedding (one ONNX Runtime run, which cannot be interrupted once started).
    /// </summary>
    /// <exception cref="ArgumentException">Too many files, no readable DICOM slice, or files of several series (studies) for one query.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled before the work was done.</exception>
    public Query Images(VolumeLevel level, IReadOnlyList<(ReadOnlyMemory<byte> Bytes, string Name)> files, List<string> skipped,
        CancellationToken cancellation = default)
    {
        if (level == VolumeLevel.Instance) throw new ArgumentException("an instance query is one image: use Image", nameof(level));
        if (files.Count > MaxQueryFiles) throw new ArgumentException($"images: {files.Count} files; a {level.Name()} query takes at most {MaxQueryFiles}");
        var headers = new List<(ReadOnlyMemory<byte> Bytes, string Name, InstanceMetadata Header)>();
        foreach (var (bytes, name) in files)
        {
            cancellation.ThrowIfCancellationRequested();
            try
            {
                var header = InstanceMetadata.From(DicomFile.Open(bytes, name).Dataset, ReadOptions.PatientHasher!);
                if (header.SeriesInstanceUid is not { Length: > 0 }) skipped.Add($"{name}: not a DICOM image of a series");
                else headers.Add((bytes, name, header));
            }
            catch (DicomException e)
            {
                skipped.Add($"{name}: {e.Message}");
            }
        }
        if (headers.Count == 0) throw new ArgumentException($"images: none of the {files.Count} file(s) is a readable DICOM slice of a series");
        // Files without a Study UID form a study per series, as stored series do.
        var groups = headers.GroupBy(h => level == VolumeLevel.Series ? h.Header.SeriesInstanceUid! : h.Header.StudyInstanceUid ?? "series-" + h.Header.SeriesInstanceUid).ToList();
        if (groups.Count > 1)
            throw new ArgumentException($"images: the files belong to {groups.Count} {(level == VolumeLevel.Series ? "series" : "studies")} " +
                $"({string.Join(", ", groups.Select(g => g.Key).Take(3))}); a {level.Name()} query takes one");

        var querySlices = new List<QuerySlice>();
        var seriesVectors = new List<float[]>();
        foreach (var series in headers.GroupBy(h => h.Header.SeriesInstanceUid!).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var ordered = VolumeCatalog.Arrange(series.ToList(),
                h => SlicePlace.Of(h.Header.ImagePositionPatient, h.Header.ImageOrientationPatient, h.Header.InstanceNumber ?? double.NaN, 0, h.Name),
                h => (h.Header.Columns ?? 0, h.Header.Rows ?? 0), h => h.Name, skipped);
            var sampled = new List<(string Name, PixelImage Image)>();
            foreach (var i in VolumePooling.Sample(ordered.Count, Volumes.SlicesPerSeries))
            {
                cancellation.ThrowIfCancellationRequested();
                try
                {
                    sampled.Add((ordered[i].Name, ImageReader.Read(ordered[i].Bytes, ordered[i].Name, ReadOptions).Frames[0].Image));
                }
                catch (Exception e) when (CaseWriter.FailureOf(e) is { } failure)
                {
                    skipped.Add($"{ordered[i].Name}: {failure.Reason}");
                }
            }
            if (sampled.Count == 0) continue;
            cancellation.ThrowIfCancellationRequested();
            var vectors = new float[sampled.Count * Dimensions];
            Encoder.Embed(sampled.Select(s => s.Image).ToList(), vectors);
            var embeddings = Enumerable.Range(0, sampled.Count).Select(i => vectors.AsSpan(i * Dimensions, Dimensions).ToArray()).ToList();
            seriesVectors.Add(VolumePooling.Pool(embeddings, Volumes.Pooling));
            querySlices.AddRange(sampled.Select((s, i) => new QuerySlice(s.Name, embeddings[i], s.Image.ToThumbnailPng())));
        }
        if (seriesVectors.Count == 0) throw new ArgumentException($"images: no sampled slice of the {files.Count} file(s) could be decoded");
        var embedding = level == VolumeLevel.Series ? seriesVectors[0] : VolumePooling.Pool(seriesVectors, Pooling.Mean);
        var first = headers[0].Header;
        return new Query(embedding, first.PatientHash, first.StudyInstanceUid, 0, level, querySlices, skipped);
    }

    /// <summary>
    /// A caller's embedding as the query, checked to be one the encoder's model could have made. When the caller
    /// names the model that made it (<paramref name="modelId"/>, empty for unnamed), it must be this model.
    /// </summary>
    /// <exception cref="ModelMismatchException"><paramref name="modelId"/> names another model.</exception>
    /// <exception cref="ArgumentException">Wrong length, a non-finite value, or all zeros.</exception>
    public Query Embedding(IReadOnlyList<float> values, VolumeLevel level = VolumeLevel.Instance, string modelId = "")
    {
        if (modelId.Length > 0 && modelId != ModelId)
            throw new ModelMismatchException($"embedding.model_id: the embedding was made by {modelId}, the collection uses {ModelId}; " +
                "embeddings of different models are not comparable");
        int dimensions = level == VolumeLevel.Instance ? Dimensions : VolumeDimensions;
        if (values.Count != dimensions)
            throw new ArgumentException($"embedding: {values.Count} values, the collection's model ({ModelId}) makes {dimensions} at {level.Name()} level", nameof(values));
        for (int i = 0; i < values.Count; i++)
            if (!float.IsFinite(values[i]))
                throw new ArgumentException($"embedding: value {i} is {values[i]}, not a finite number", nameof(values));
        if (values.All(v => v == 0))
            throw new ArgumentException("embedding: all values are 0, which has no direction to compare", nameof(values));
        return new Query(values.ToArray(), Level: level);
    }
}
