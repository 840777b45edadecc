using MedSearch.Engine;

namespace MedSearch.Server;

/// <summary>Settings of `medsearch serve`, bound from the command line (and later from configuration).</summary>
public sealed class ServerOptions
{
    public const string DefaultUrls = "http://127.0.0.1:5080";

    public required string DataPath { get; init; }
    public string Urls { get; init; } = DefaultUrls;
    public CollectionOptions Collection { get; init; } = new();

    /// <summary>Bounds on concurrent query-image embedding (see <see cref="InferenceGate"/>).</summary>
    public InferenceOptions Inference { get; init; } = new();

    /// <summary>Largest request accepted: an uncompressed multi-frame DICOM can be large, but not unbounded.</summary>
    public int MaxRequestBytes { get; init; } = 256 * 1024 * 1024;
}
