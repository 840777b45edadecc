using Google.Protobuf;
using MedSearch.Engine;
using Orleans.Concurrency;

namespace MedSearch.Cluster;

/// <summary>
/// A shard's activation: the shard's collection opened from the cluster storage on this silo. Reentrant, with the
/// work on the thread pool, because the collection is thread-safe and a shard must answer many queries at once;
/// kept alive, because reopening costs the store's recovery and the index load.
/// </summary>
[ShardPlacement, Reentrant, KeepAlive]
internal sealed class ShardGrain(ShardHost host) : Grain, IShardGrain
{
    private LocalCaseSpace _space = null!;

    private int Shard => (int)this.GetPrimaryKeyLong();

    public override async Task OnActivateAsync(CancellationToken cancellation)
    {
        if (Shard < 0 || Shard >= host.Layout.Shards)
            throw new ArgumentOutOfRangeException(nameof(cancellation), $"shard {Shard} does not exist; the cluster has {host.Layout.Shards}");
        _space = await host.OpenAsync(Shard, cancellation);
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellation) =>
        Task.Run(() => host.Close(Shard), CancellationToken.None);

    public Task<ShardHits> SearchAsync(ShardSearch search) => Task.Run(async () =>
    {
        try
        {
            var result = await _space.SearchAsync(search.Query.ToQuery(), search.ToOptions(), CancellationToken.None);
            return new ShardHits(result.Neighbours.Select(ToHit).ToArray(), null);
        }
        catch (Exception e) when (ShardRefusal.Of(e) is { } refusal)
        {
            return new ShardHits([], refusal);
        }
    });

    private static ShardHit ToHit(Neighbour n) => new(n.Similarity, n.Case.ToByteArray(), n.BestSlices?.QuerySlice, n.BestSlices?.QueryThumbnail,
        n.BestSlices?.HitSliceKey, n.BestSlices?.HitThumbnail, n.BestSlices?.Similarity ?? 0);

    public Task<ShardIngestResult[]> IngestAsync(ShardIngestItem[] items) => Task.Run(async () =>
    {
        var results = await _space.IngestAsync(items.Select(i => new IngestItem(i.Name, i.Bytes,
            i.Labels is null && i.Metadata is null ? null : new CaseAnnotation(i.Labels ?? [], i.Metadata ?? []))).ToList(), CancellationToken.None);
        return results.Select(r => new ShardIngestResult((int)r.Outcome, r.Key, r.Reason)).ToArray();
    });

    public Task<string[]> DeleteAsync(DeleteScope scope, string value) => Task.Run(async () =>
        (await _space.DeleteAsync(scope, value, CancellationToken.None)).ToArray());

    public Task<byte[]?> FindAsync(string idOrKey) => Task.Run(async () =>
    {
        try
        {
            return (await _space.FindCaseAsync(idOrKey, CancellationToken.None)).ToByteArray();
        }
        catch (CaseNotFoundException)
        {
            return null;
        }
    });

    public Task<ShardQuery?> StoredQueryAsync(VolumeLevel level, string idOrUid) => Task.Run(async () =>
    {
        try
        {
            return ShardQuery.Of(await _space.StoredQueryAsync(level, idOrUid, CancellationToken.None));
        }
        catch (CaseNotFoundException)
        {
            return null;
        }
    });

    public Task<ShardUpdate> UpdateLabelsAsync(string idOrKey, bool replace, string[] add, string[] remove) => Task.Run(async () =>
    {
        try
        {
            return new ShardUpdate((await _space.UpdateLabelsAsync(idOrKey, replace, add, remove, CancellationToken.None)).ToByteArray(), null);
        }
        catch (Exception e) when (ShardRefusal.Of(e) is { } refusal)
        {
            return new ShardUpdate(null, refusal);
        }
    });

    public Task<ShardStats> StatsAsync() => Task.Run(async () =>
    {
        var s = await _space.StatsAsync(CancellationToken.None);
        return new ShardStats(s.Cases, new(s.CasesByModality), new(s.CasesByLabel), s.UnlabelledCases, s.Indexed, s.IndexMemoryBytes,
            s.StoreBytes, s.IndexBytes, s.Series, s.Studies);
    });

    public Task CheckpointAsync() => Task.Run(() => _space.CheckpointAsync(CancellationToken.None));
}
