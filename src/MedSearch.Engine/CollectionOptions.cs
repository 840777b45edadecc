using MedSearch.Embedding;
using MedSearch.Index;
using MedSearch.Storage;

namespace MedSearch.Engine;

/// <summary>Settings of one collection, bound from the command line or configuration.</summary>
public sealed record CollectionOptions
{
    public const int MaxNeighboursLimit = 1000;

    /// <summary>Configuration for <c>--model</c>: a model folder or manifest, used when the option is not given.</summary>
    public const string ModelEnvironmentVariable = "MEDSEARCH_MODEL";

    /// <summary>Configuration for <c>--device</c> (auto, cpu, cuda, cuda:N), used when the option is not given.</summary>
    public const string DeviceEnvironmentVariable = "MEDSEARCH_DEVICE";

    public EncoderOptions Encoder { get; init; } = new();

    /// <summary>
    /// The encoder: a model folder or its manifest.json (docs/models.md); null for the built-in ResNet18, which is
    /// prepared inside the data directory.
    /// </summary>
    public string? ModelPath { get; init; }

    public HnswOptions Hnsw { get; init; } = new();

    /// <summary>How series and studies are pooled; null keeps what the collection recorded (else the default).</summary>
    public Pooling? Pooling { get; init; }

    /// <summary>Slices pooled per series; null keeps what the collection recorded (else the default).</summary>
    public int? SlicesPerSeries { get; init; }
    public CaseStoreOptions Store { get; init; } = new();

    /// <summary>
    /// Longest a checkpoint goes without saving the index too (bulk jobs and ingest checkpoint without it): after a
    /// crash, open replays the store's changes since the last save, so this bounds that replay.
    /// </summary>
    public TimeSpan IndexSaveInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Largest k a caller may ask for; bounds the work and memory of one query.</summary>
    public int MaxNeighbours { get; init; } = MaxNeighboursLimit;

    /// <summary>
    /// An encoder already open, shared by several collections of one process (a cluster silo's shards); the
    /// collection uses it instead of opening its own and does not dispose it.
    /// </summary>
    public ImageEncoder? SharedEncoder { get; init; }

    /// <summary>
    /// Where the patient-hash key lives when not in the data directory (a cluster keeps one key for all shards so a
    /// patient hashes alike everywhere).
    /// </summary>
    public string? PatientKeyDirectory { get; init; }

    /// <summary>
    /// The encoder settings of a command: <paramref name="model"/> and <paramref name="device"/> (the options'
    /// values, null when not given) win, then $MEDSEARCH_MODEL and $MEDSEARCH_DEVICE, then the built-in model on
    /// <see cref="EncoderDevice.Auto"/>.
    /// </summary>
    /// <exception cref="FormatException">
    /// The device is not auto, cpu, cuda or cuda:N; the message quotes it, and names $MEDSEARCH_DEVICE when it came from there.
    /// </exception>
    public static CollectionOptions FromSettings(string? model, string? device, EncoderOptions? encoder = null, Pooling? pooling = null,
        int? slicesPerSeries = null)
    {
        encoder ??= new EncoderOptions();
        if (Setting.From(device, DeviceEnvironmentVariable) is { } chosen)
        {
            try
            {
                encoder = encoder.WithDevice(chosen);
            }
            catch (FormatException e) when (string.IsNullOrWhiteSpace(device))
            {
                throw new FormatException($"${DeviceEnvironmentVariable}: {e.Message}", e);
            }
        }
        return new CollectionOptions
        {
            Encoder = encoder, ModelPath = Setting.From(model, ModelEnvironmentVariable), Pooling = pooling, SlicesPerSeries = slicesPerSeries,
        };
    }

    /// <summary>How <see cref="ModelPath"/> reads in messages: the path, or what the default is.</summary>
    public string ModelDescription => ModelPath ?? "the built-in ResNet18";

    /// <summary>Opens the encoder these options name; problems with the model or device become <see cref="CollectionException"/>s.</summary>
    public ImageEncoder OpenEncoder(string dataPath)
    {
        try
        {
            return ModelPath is null
                ? ImageEncoder.OpenDefault(dataPath, Encoder)
                : ImageEncoder.Open(ModelManifest.Resolve(ModelPath), Encoder);
        }
        catch (EmbeddingModelException e)
        {
            throw new CollectionException($"model: {e.Message}", e);
        }
        catch (InvalidOperationException e) when (Encoder.Device == EncoderDevice.Cuda)
        {
            // Only an explicit CUDA request fails like this; auto falls back to the CPU and says why.
            throw new CollectionException($"device cuda:{Encoder.DeviceId}: {e.Message}", e);
        }
    }
}
