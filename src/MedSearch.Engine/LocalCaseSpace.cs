using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// The case space of a single node: one <see cref="Collection"/>, which it owns. The collection's calls are
/// synchronous and fast enough to run on the caller's thread, so each task is already complete when returned, except
/// a search's, which awaits the hits it reads from disk.
/// </summary>
public sealed class LocalCaseSpace(Collection collection) : ICaseSpace, IDisposable
{
    public Collection Collection { get; } = collection;

    public string ModelId => Collection.ModelId;
    public int Dimensions => Collection.Dimensions;
    public int MaxNeighbours => Collection.MaxNeighbours;
    public QueryReader Queries => Collection.Queries;
    public OperatingPoints OperatingPoints => Collection.OperatingPoints;

    public Task<Query> StoredQueryAsync(VolumeLevel level, string idOrUid, CancellationToken cancellation)
    {
        cancellation.ThrowIfCancellationRequested();
        return Task.FromResult(level == VolumeLevel.Instance ? Collection.CaseQuery(idOrUid) : Collection.VolumeQuery(level, idOrUid));
    }

    /// <summary>
    /// The collection's search, unless <paramref name="cancellation"/> is cancelled or <see cref="SearchOptions.Deadline"/>
    /// has passed before it starts (<see cref="OperationCanceledException"/>): one node's search cannot be partial,
    /// and once started it is short enough to finish.
    /// </summary>
    public Task<SearchResult> SearchAsync(Query query, SearchOptions options, CancellationToken cancellation)
    {
        cancellation.ThrowIfCancellationRequested();
        if (DateTime.UtcNow >= options.Deadline) throw new OperationCanceledException($"the deadline ({options.Deadline:O}) passed before the search started");
        return Collection.SearchAsync(query, options).AsTask();
    }

    /// <summary>
    /// Stores the items one by one (cancellation stops between them), then takes one checkpoint for all, so that
    /// every result is durable when this returns.
    /// </summary>
    public Task<IReadOnlyList<IngestItemResult>> IngestAsync(IReadOnlyList<IngestItem> items, CancellationToken cancellation)
    {
        var results = new List<IngestItemResult>(items.Count);
        foreach (var item in items)
        {
            cancellation.ThrowIfCancellationRequested();
            results.Add(CaseWriter.Ingest(Collection, item.Name, item.Bytes, item.Annotation));
        }
        // Even UNCHANGED waits for the checkpoint: the stored case may be another stream's write not yet covered.
        if (results.Any(r => r.Outcome is ItemOutcome.Indexed or ItemOutcome.Updated or ItemOutcome.Unchanged))
            Collection.Checkpoint(saveIndex: false);
        return Task.FromResult<IReadOnlyList<IngestItemResult>>(results);
    }

    public Task<IReadOnlyList<string>> DeleteAsync(DeleteScope scope, string value, CancellationToken cancellation) =>
        Task.FromResult(Collection.Delete(scope, value));

    public Task<CaseRecord> FindCaseAsync(string idOrKey, CancellationToken cancellation) =>
        Task.FromResult(Collection.FindCase(idOrKey));

    public Task<CaseRecord> UpdateLabelsAsync(string idOrKey, bool replace, IReadOnlyCollection<string> add, IReadOnlyCollection<string> remove,
        CancellationToken cancellation) =>
        Task.FromResult(Collection.UpdateLabels(idOrKey, replace, add, remove));

    public Task<CollectionStats> StatsAsync(CancellationToken cancellation) => Task.FromResult(Collection.Stats());

    public Task<IReadOnlyDictionary<string, long>> LabelCountsAsync(CancellationToken cancellation) => Task.FromResult(Collection.LabelCounts());

    public Task<long> CountAsync(CancellationToken cancellation) => Task.FromResult(Collection.Count);

    public Task CheckpointAsync(CancellationToken cancellation)
    {
        Collection.Checkpoint(saveIndex: true);
        return Task.CompletedTask;
    }

    public void Dispose() => Collection.Dispose();
}
