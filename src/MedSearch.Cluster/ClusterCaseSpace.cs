using System.Collections.Concurrent;
using MedSearch.Engine;
using MedSearch.Storage.Records;

namespace MedSearch.Cluster;

/// <summary>Timeouts of a gateway's calls to the shards.</summary>
public sealed record ShardTimeouts
{
    /// <summary>Longest a search waits for a shard when the caller set no earlier deadline.</summary>
    public TimeSpan Search { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest a write (ingest, delete, relabel) or a lookup waits for a shard: writes embed and checkpoint.</summary>
    public TimeSpan Write { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Kept back from the caller's deadline for merging and sending the answer.</summary>
    public TimeSpan Margin { get; init; } = TimeSpan.FromMilliseconds(100);
}

/// <summary>
/// The case space of a cluster, as a gateway sees it: queries fan out to every shard in parallel and their top k
/// are merged by similarity, one-per-study applied after the merge, the vote counted on the merged neighbours;
/// filters and exclusions are pushed down to the shards. A shard that does not answer in time is named in the
/// result's <see cref="SearchResult.Missing"/>. Writes go to the shard of the case's study. Query files are read
/// and embedded here, with this machine's encoder, so a query image is embedded once, not once per shard.
/// </summary>
public sealed class ClusterCaseSpace(IGrainFactory grains, ClusterLayout layout, QueryReader queries, CollectionOptions options, ShardTimeouts timeouts)
    : ICaseSpace
{
    public string ModelId => queries.ModelId;
    public int Dimensions => queries.Dimensions;
    public int MaxNeighbours => options.MaxNeighbours;
    public QueryReader Queries => queries;

    /// <summary>Kept in the cluster storage, where `medsearch eval --save` run against the cluster writes them.</summary>
    public OperatingPoints OperatingPoints { get; } = OperatingPoints.Load(layout.Root);

    private IShardGrain Shard(int shard) => grains.GetGrain<IShardGrain>(shard);

    public async Task<Query> StoredQueryAsync(VolumeLevel level, string idOrUid, CancellationToken cancellation)
    {
        var answers = await FanOutAsync(shard => Shard(shard).StoredQueryAsync(level, idOrUid), timeouts.Write, cancellation);
        if (answers.Values.FirstOrDefault(q => q is not null) is { } found) return found.ToQuery();
        RequireAll(answers, "the query case may be on it");
        throw new CaseNotFoundException(level == VolumeLevel.Instance
            ? $"no stored case has id, key or SOP Instance UID `{idOrUid}`"
            : $"no stored {(level == VolumeLevel.Series ? "series" : "study")} has UID `{idOrUid}`");
    }

    public async Task<SearchResult> SearchAsync(Query query, SearchOptions options, CancellationToken cancellation)
    {
        var search = ShardSearch.Of(query, options);
        var left = options.Deadline == DateTime.MaxValue ? timeouts.Search : options.Deadline - DateTime.UtcNow - timeouts.Margin;
        var timeout = left < timeouts.Search ? left : timeouts.Search;
        var answers = await FanOutAsync(shard => Shard(shard).SearchAsync(search), timeout, cancellation);
        if (answers.Values.FirstOrDefault(a => a.Refusal is not null)?.Refusal is { } refusal) throw refusal.ToException();

        // Each shard's list is its exact (or graph) top k, so the merged top k is the whole space's; a study lives on
        // one shard, so one-per-study is already met per shard, and applying it again after the merge keeps it true
        // should routing ever change.
        var studies = options.OnePerStudy ? new HashSet<string>(StringComparer.Ordinal) : null;
        var neighbours = new List<Neighbour>(options.K);
        foreach (var hit in answers.Values.SelectMany(a => a.Hits).OrderByDescending(h => h.Similarity))
        {
            var record = CaseRecord.Parser.ParseFrom(hit.Record);
            if (studies is not null && record.Metadata.TryGetValue("study_instance_uid", out var study) && !studies.Add(study)) continue;
            var slices = hit.HitSliceKey is null ? null
                : new SlicePair(hit.QuerySlice!, hit.QueryThumbnail ?? [], hit.HitSliceKey, hit.HitThumbnail ?? [], hit.SliceSimilarity);
            neighbours.Add(new Neighbour(neighbours.Count + 1, hit.Similarity, record, slices));
            if (neighbours.Count == options.K) break;
        }
        var (votes, unlabelled) = NeighbourVote.Tally(neighbours);
        return new SearchResult(neighbours, votes, unlabelled, ModelId, answers.Missing.Count == 0 ? null : answers.Missing);
    }

    public async Task<IReadOnlyList<IngestItemResult>> IngestAsync(IReadOnlyList<IngestItem> items, CancellationToken cancellation)
    {
        var results = new IngestItemResult[items.Count];
        var byShard = Enumerable.Range(0, items.Count)
            .GroupBy(i => layout.ShardOf(items[i].Bytes, items[i].Name, () => CaseWriter.KeyOf(items[i].Bytes, items[i].Name, CaseWriter.IngestPrefix + items[i].Name)));
        await Task.WhenAll(byShard.Select(async group =>
        {
            var indices = group.ToArray();
            var batch = indices.Select(i => new ShardIngestItem(items[i].Name, items[i].Bytes.ToArray(), items[i].Annotation?.Labels.ToArray(),
                items[i].Annotation is { } a ? new Dictionary<string, string>(a.Metadata, StringComparer.Ordinal) : null)).ToArray();
            try
            {
                var stored = await Shard(group.Key).IngestAsync(batch).WaitAsync(timeouts.Write, cancellation);
                for (int j = 0; j < indices.Length; j++)
                    results[indices[j]] = new IngestItemResult((ItemOutcome)stored[j].Outcome, stored[j].Key, stored[j].Reason);
            }
            catch (Exception e) when (!cancellation.IsCancellationRequested)
            {
                // Unacknowledged, so the caller sends the file again; a write the shard made before failing is
                // either covered by its next checkpoint or lost, and a second ingest of the same file is idempotent.
                foreach (int i in indices)
                    results[i] = new IngestItemResult(ItemOutcome.Failed, null, $"not stored: {Describe(group.Key, e, timeouts.Write)}; send it again");
            }
        }));
        return results;
    }

    public async Task<IReadOnlyList<string>> DeleteAsync(DeleteScope scope, string value, CancellationToken cancellation)
    {
        var answers = await FanOutAsync(shard => Shard(shard).DeleteAsync(scope, value), timeouts.Write, cancellation);
        var deleted = answers.Values.SelectMany(a => a).ToList();
        RequireAll(answers, $"{deleted.Count} case(s) were deleted on the others; deleting again is safe and finishes the job");
        return deleted;
    }

    public async Task<CaseRecord> FindCaseAsync(string idOrKey, CancellationToken cancellation)
    {
        var answers = await FanOutAsync(shard => Shard(shard).FindAsync(idOrKey), timeouts.Write, cancellation);
        if (answers.Values.FirstOrDefault(r => r is not null) is { } found) return CaseRecord.Parser.ParseFrom(found);
        RequireAll(answers, "the case may be on it");
        throw new CaseNotFoundException($"no stored case has id, key or SOP Instance UID `{idOrKey}`");
    }

    public async Task<CaseRecord> UpdateLabelsAsync(string idOrKey, bool replace, IReadOnlyCollection<string> add, IReadOnlyCollection<string> remove,
        CancellationToken cancellation)
    {
        string[] adding = [.. add], removing = [.. remove];
        var answers = await FanOutAsync(shard => Shard(shard).UpdateLabelsAsync(idOrKey, replace, adding, removing), timeouts.Write, cancellation);
        if (answers.Values.FirstOrDefault(u => u.Record is not null) is { } updated) return CaseRecord.Parser.ParseFrom(updated.Record!);
        if (answers.Values.FirstOrDefault(u => u.Refusal is { Kind: not ShardRefusalKind.NotFound })?.Refusal is { } refusal) throw refusal.ToException();
        RequireAll(answers, "the case may be on it");
        throw new CaseNotFoundException($"no stored case has id, key or SOP Instance UID `{idOrKey}`");
    }

    public async Task<CollectionStats> StatsAsync(CancellationToken cancellation)
    {
        var answers = await FanOutAsync(shard => Shard(shard).StatsAsync(), timeouts.Write, cancellation);
        RequireAll(answers, "its cases cannot be counted");
        var shards = answers.Values;
        return new CollectionStats(shards.Sum(s => s.Cases), Sum(shards.Select(s => s.CasesByModality)), Sum(shards.Select(s => s.CasesByLabel)),
            shards.Sum(s => s.UnlabelledCases), options.Hnsw, shards.Sum(s => s.Indexed), shards.Sum(s => s.IndexMemoryBytes),
            shards.Sum(s => s.StoreBytes), shards.Sum(s => s.IndexBytes), shards.Sum(s => s.Series), shards.Sum(s => s.Studies), queries.Volumes);
    }

    private static SortedDictionary<string, long> Sum(IEnumerable<Dictionary<string, long>> counts)
    {
        var total = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (key, count) in counts.SelectMany(c => c)) total[key] = total.GetValueOrDefault(key) + count;
        return total;
    }

    public async Task<IReadOnlyDictionary<string, long>> LabelCountsAsync(CancellationToken cancellation) =>
        (await StatsAsync(cancellation)).CasesByLabel;

    public async Task<long> CountAsync(CancellationToken cancellation) => (await StatsAsync(cancellation)).Cases;

    /// <summary>Snapshots every shard's index, best effort: a shard that does not answer checkpoints when its silo hands it over.</summary>
    public Task CheckpointAsync(CancellationToken cancellation) =>
        FanOutAsync(async shard => { await Shard(shard).CheckpointAsync(); return true; }, timeouts.Write, cancellation);

    /// <summary>The answers that came, and a line per shard that did not answer, saying why.</summary>
    private sealed record Answers<T>(IReadOnlyList<T> Values, IReadOnlyList<string> Missing);

    private async Task<Answers<T>> FanOutAsync<T>(Func<int, Task<T>> call, TimeSpan timeout, CancellationToken cancellation)
    {
        if (timeout <= TimeSpan.Zero) timeout = TimeSpan.FromMilliseconds(1);
        var values = new ConcurrentQueue<T>();
        var missing = new ConcurrentDictionary<int, string>();
        await Task.WhenAll(Enumerable.Range(0, layout.Shards).Select(async shard =>
        {
            try
            {
                values.Enqueue(await call(shard).WaitAsync(timeout, cancellation));
            }
            catch (Exception e) when (!cancellation.IsCancellationRequested)
            {
                // Shards return refusals as values, so anything thrown is the shard failing: a timeout, a silo
                // gone, the shard's storage failing to open.
                missing[shard] = Describe(shard, e, timeout);
            }
        }));
        cancellation.ThrowIfCancellationRequested();
        return new Answers<T>([.. values], missing.OrderBy(m => m.Key).Select(m => m.Value).ToList());
    }

    private void RequireAll<T>(Answers<T> answers, string consequence)
    {
        if (answers.Missing.Count > 0)
            throw new CaseSpaceUnavailableException($"{answers.Missing.Count} of {layout.Shards} shards did not answer ({string.Join("; ", answers.Missing)}); {consequence}. Retry shortly: a failed silo's shards move to the others");
    }

    private string Describe(int shard, Exception e, TimeSpan timeout) => e is TimeoutException
        ? $"shard {shard} of {layout.Shards} gave no answer within {timeout.TotalMilliseconds:F0} ms"
        : $"shard {shard} of {layout.Shards} failed ({e.GetType().Name}: {e.Message})";
}
