using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>An uploaded file to store as a case: its name (kept as the case's source), bytes and the caller's annotation.</summary>
public sealed record IngestItem(string Name, ReadOnlyMemory<byte> Bytes, CaseAnnotation? Annotation);

/// <summary>
/// The cases a server answers from: one <see cref="Collection"/> on this machine (<see cref="LocalCaseSpace"/>), or
/// a cluster's shards, each a collection on the silo that owns it. The gRPC services speak only to this, so a
/// single node and a cluster offer the same API. Calls are asynchronous because a shard may be another machine;
/// queries from files are made here (<see cref="Queries"/>), with this machine's encoder, before the search.
/// </summary>
public interface ICaseSpace
{
    string ModelId { get; }
    int Dimensions { get; }
    int MaxNeighbours { get; }

    /// <summary>Turns query files and caller embeddings into queries exactly as indexing reads files.</summary>
    QueryReader Queries { get; }

    /// <summary>Each label's decision threshold for classification.</summary>
    OperatingPoints OperatingPoints { get; }

    /// <summary>A stored case (instance level: id, key or SOP Instance UID) or series or study (its UID) as the query.</summary>
    /// <exception cref="CaseNotFoundException">Nothing stored under that name.</exception>
    Task<Query> StoredQueryAsync(VolumeLevel level, string idOrUid, CancellationToken cancellation);

    /// <summary>
    /// See <see cref="Collection.Search"/>. When part of the space did not answer in time the result is partial and
    /// <see cref="SearchResult.Missing"/> names that part; it is never silently incomplete.
    /// </summary>
    Task<SearchResult> SearchAsync(Query query, SearchOptions options, CancellationToken cancellation);

    /// <summary>Stores each file as a case (see <see cref="CaseWriter.Ingest"/>); every result is durable when this returns.</summary>
    Task<IReadOnlyList<IngestItemResult>> IngestAsync(IReadOnlyList<IngestItem> items, CancellationToken cancellation);

    /// <summary>See <see cref="Collection.Delete"/>: when this returns the cases are gone from search and from the files.</summary>
    Task<IReadOnlyList<string>> DeleteAsync(DeleteScope scope, string value, CancellationToken cancellation);

    /// <exception cref="CaseNotFoundException">No such case.</exception>
    Task<CaseRecord> FindCaseAsync(string idOrKey, CancellationToken cancellation);

    /// <summary>See <see cref="Collection.UpdateLabels"/>.</summary>
    Task<CaseRecord> UpdateLabelsAsync(string idOrKey, bool replace, IReadOnlyCollection<string> add, IReadOnlyCollection<string> remove,
        CancellationToken cancellation);

    Task<CollectionStats> StatsAsync(CancellationToken cancellation);

    Task<IReadOnlyDictionary<string, long>> LabelCountsAsync(CancellationToken cancellation);

    /// <summary>Stored cases, for the health check.</summary>
    Task<long> CountAsync(CancellationToken cancellation);

    /// <summary>A clean stop's checkpoint with index snapshots, so the next start loads the index instead of rebuilding it.</summary>
    Task CheckpointAsync(CancellationToken cancellation);
}

/// <summary>k-NN classification over any case space: the search, then a weighted vote per label decided at its operating point.</summary>
public static class CaseSpaceClassification
{
    public static async Task<Classification> ClassifyAsync(this ICaseSpace space, Query query, SearchOptions options, Weighting weighting,
        double temperature, CancellationToken cancellation)
    {
        var result = await space.SearchAsync(query, options, cancellation);
        return Classification.Decide(result, query.Level, space.OperatingPoints, weighting, temperature);
    }
}
