using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using MedSearch.Embedding;

namespace MedSearch.Engine;

/// <summary>
/// The encoder a collection's vectors were made with: enough to reproduce them (the whole manifest, hash
/// included, the ONNX Runtime version, the graph optimisation level and the execution provider) and to tell
/// the operator which <c>--model</c> the collection needs.
/// </summary>
public sealed record EncoderRecord(
    [property: JsonPropertyName("manifest")] JsonObject Manifest,
    // The manifest the collection was built from; empty for the built-in model.
    [property: JsonPropertyName("modelPath")] string ModelPath,
    [property: JsonPropertyName("onnxRuntime")] string OnnxRuntime,
    [property: JsonPropertyName("graphOptimization")] string GraphOptimization,
    [property: JsonPropertyName("executionProvider")] string ExecutionProvider)
{
    /// <summary>What <paramref name="encoder"/>, opened per <paramref name="options"/>, is.</summary>
    public static EncoderRecord Of(ImageEncoder encoder, CollectionOptions options) => new(
        encoder.Manifest.ToJson(),
        options.ModelPath is null ? "" : encoder.Manifest.ManifestPath,
        ImageEncoder.OnnxRuntimeVersion,
        ImageEncoder.OptimizationLevel.ToString(),
        encoder.ExecutionProvider);

    /// <summary>"ONNX Runtime 1.31.0, ORT_ENABLE_ALL, CPUExecutionProvider".</summary>
    public string Runtime => $"ONNX Runtime {OnnxRuntime}, {GraphOptimization}, {ExecutionProvider}";
}

/// <summary>
/// collection.json: what a collection was built with. Written when the collection is created, so that a later
/// run with another encoder is refused instead of mixing embeddings that are not comparable.
/// </summary>
public sealed record CollectionSettings(
    [property: JsonPropertyName("format")] int Format,
    [property: JsonPropertyName("modelId")] string ModelId,
    [property: JsonPropertyName("dimensions")] int Dimensions,
    [property: JsonPropertyName("createdUtc")] DateTimeOffset CreatedUtc,
    // Absent from format 1 files, which predate it; Reconcile adds it.
    [property: JsonPropertyName("encoder")] EncoderRecord? Encoder,
    // How series and studies are pooled; absent before study-level search, which means the defaults.
    [property: JsonPropertyName("volumes")] VolumeOptions? Volumes = null)
{
    /// <summary>2: the encoder record was added.</summary>
    public const int CurrentFormat = 2;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static CollectionSettings? Load(string path)
    {
        if (!File.Exists(path)) return null;
        CollectionSettings? settings;
        try
        {
            settings = JsonSerializer.Deserialize<CollectionSettings>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new CollectionException($"{path} is not valid collection settings JSON: {e.Message}", e);
        }
        if (settings is null || string.IsNullOrEmpty(settings.ModelId) || settings.Dimensions <= 0)
            throw new CollectionException($"{path} lacks modelId or dimensions");
        if (settings.Format > CurrentFormat)
            throw new CollectionException($"{path} was written by a newer MedSearch (format {settings.Format}; this version reads up to {CurrentFormat})");
        return settings;
    }

    public void Save(string path)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, Json));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Checks the encoder of this run against the collection's settings at <paramref name="path"/>: creates them
    /// for a new collection, refuses another model, and logs when the runtime differs from the one that made the
    /// stored vectors (new vectors may then differ in their last bits; similarities stay comparable).
    /// </summary>
    /// <returns>The volume pooling to use: the options' when given (recorded, and logged when it changes), else the recorded one.</returns>
    /// <exception cref="ModelMismatchException">The collection was built with another model.</exception>
    public static VolumeOptions Reconcile(string path, ImageEncoder encoder, CollectionOptions options, Action<string> log)
    {
        var current = EncoderRecord.Of(encoder, options);
        var settings = Load(path);
        var recorded = settings?.Volumes ?? new VolumeOptions();
        var volumes = (recorded with
        {
            Pooling = options.Pooling ?? recorded.Pooling,
            SlicesPerSeries = options.SlicesPerSeries ?? recorded.SlicesPerSeries,
        }).Validated();
        if (settings is null)
        {
            new CollectionSettings(CurrentFormat, encoder.Manifest.ModelId, encoder.Dimensions, DateTimeOffset.UtcNow, current, volumes).Save(path);
            return volumes;
        }
        if (settings.ModelId != encoder.Manifest.ModelId || settings.Dimensions != encoder.Dimensions)
        {
            var builtWith = settings.Encoder is { ModelPath.Length: > 0 } e ? $"--model {e.ModelPath}" : "the built-in ResNet18 (no --model)";
            throw new ModelMismatchException(
                $"data directory {Path.GetDirectoryName(path)} was built with model {settings.ModelId} ({settings.Dimensions}-d, {builtWith}) " +
                $"but this run uses {encoder.Manifest.ModelId} ({encoder.Dimensions}-d, {options.ModelDescription}); embeddings of different " +
                $"models are not comparable. Run with the collection's model, or re-embed its cases into a new data directory with " +
                $"`medsearch reindex --model M --data {Path.GetDirectoryName(path)} --to NEW`");
        }
        if (settings.Encoder is null)
        {
            // Format 1 recorded only the model id, which matches: the manifest is the same one, the runtime is this one.
            (settings with { Format = CurrentFormat, Encoder = current }).Save(path);
            log($"collection: {path} upgraded to format {CurrentFormat} (records the encoder's manifest and runtime)");
        }
        else if (settings.Encoder.Runtime != current.Runtime)
        {
            log($"encoder: the stored vectors were made with {settings.Encoder.Runtime}, this run uses {current.Runtime}; " +
                "new vectors may differ from stored ones in their last bits (similarities stay comparable)");
        }
        if (settings.Volumes != volumes)
        {
            // Series and study vectors are derived on open, so a new pooling needs no re-embedding.
            (Load(path)! with { Volumes = volumes }).Save(path);
            if (settings.Volumes is not null) log($"volumes: series and studies now pooled as {volumes} (was {settings.Volumes})");
        }
        return volumes;
    }
}
