namespace MedSearch.Index;

/// <summary>
/// HNSW graph parameters. The metric is always cosine and vectors are stored as f32: <see cref="IVectorIndex"/>
/// promises cosine similarities, and f32 keeps them exact enough to rank near-duplicates.
/// </summary>
public sealed record HnswOptions
{
    /// <summary>Links per node (HNSW's M). More: better recall, more memory, slower adds. Fixed once the graph is built.</summary>
    public int Connectivity { get; init; } = 16;

    /// <summary>Candidate list size while linking a new node (efConstruction). More: better graph, slower adds.</summary>
    public int ExpansionAdd { get; init; } = 128;

    /// <summary>
    /// Candidate list size while searching (ef); at least k is used. More: better recall, slower searches.
    /// USearch does not save it with the index, so it is applied again on every load.
    /// </summary>
    public int ExpansionSearch { get; init; } = 128;

    internal void Validate()
    {
        // USearch's own floor: with fewer than 2 links per node the graph degenerates into chains.
        if (Connectivity < 2)
            throw new ArgumentOutOfRangeException(nameof(Connectivity), Connectivity, $"{nameof(Connectivity)} must be at least 2, got {Connectivity}");
        if (ExpansionAdd < 1)
            throw new ArgumentOutOfRangeException(nameof(ExpansionAdd), ExpansionAdd, $"{nameof(ExpansionAdd)} must be at least 1, got {ExpansionAdd}");
        if (ExpansionSearch < 1)
            throw new ArgumentOutOfRangeException(nameof(ExpansionSearch), ExpansionSearch, $"{nameof(ExpansionSearch)} must be at least 1, got {ExpansionSearch}");
    }
}
