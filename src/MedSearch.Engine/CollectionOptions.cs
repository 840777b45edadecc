using MedSearch.Embedding;
using MedSearch.Index;
using MedSearch.Storage;

namespace MedSearch.Engine;

/// <summary>Settings of one collection, bound from the command line or configuration.</summary>
public sealed class CollectionOptions
{
    public const int MaxNeighboursLimit = 1000;

    public EncoderOptions Encoder { get; init; } = new();
    public HnswOptions Hnsw { get; init; } = new();
    public CaseStoreOptions Store { get; init; } = new();

    /// <summary>Largest k a caller may ask for; bounds the work and memory of one query.</summary>
    public int MaxNeighbours { get; init; } = MaxNeighboursLimit;
}
