using System.Collections.Concurrent;
using System.Diagnostics;
using MedSearch.Embedding;
using MedSearch.Engine;
using Microsoft.Extensions.Logging;

namespace MedSearch.Cluster;

/// <summary>
/// A silo's side of the shards: the one encoder its shards share (embedding ingested files on the silo that stores
/// them, so bulk ingest spreads over the silos), and the shards open here. Disposed with the silo, which closes
/// its shards without a checkpoint, as a crash would: acknowledged cases are durable already.
/// </summary>
public sealed class ShardHost : IDisposable
{
    /// <summary>How long a new owner waits for the previous owner's lock on a shard to go (a silo still shutting down).</summary>
    public static readonly TimeSpan LockWait = TimeSpan.FromSeconds(60);

    private readonly CollectionOptions _options;
    private readonly Lazy<ImageEncoder> _encoder;
    private readonly ConcurrentDictionary<int, LocalCaseSpace> _open = new();
    private readonly ILogger<ShardHost> _log;

    public ShardHost(ClusterLayout layout, CollectionOptions options, ILogger<ShardHost> log)
    {
        Layout = layout;
        _options = options;
        _log = log;
        _encoder = new Lazy<ImageEncoder>(() => options.OpenEncoder(layout.ModelsPath), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public ClusterLayout Layout { get; }

    public ImageEncoder Encoder => _encoder.Value;

    /// <summary>The shards this silo owns now.</summary>
    public IReadOnlyCollection<int> OpenShards => [.. _open.Keys];

    /// <summary>
    /// Opens shard <paramref name="shard"/> from the cluster storage: FASTER recovers its last checkpoint and the
    /// index loads its snapshot or is rebuilt from the store. Waits up to <see cref="LockWait"/> for a previous owner.
    /// </summary>
    public async Task<LocalCaseSpace> OpenAsync(int shard, CancellationToken cancellation)
    {
        var options = _options with
        {
            Pooling = Layout.Settings.Volumes.Pooling, SlicesPerSeries = Layout.Settings.Volumes.SlicesPerSeries,
            SharedEncoder = Encoder, PatientKeyDirectory = Layout.Root,
        };
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var collection = await Task.Run(() => Collection.Open(Layout.ShardPath(shard), options, message => _log.LogInformation("shard {Shard}: {Message}", shard, message)),
                    cancellation);
                var space = new LocalCaseSpace(collection);
                _open[shard] = space;
                _log.LogInformation("shard {Shard}: opened with {Cases} cases in {Seconds:F1} s", shard, collection.Count, waited.Elapsed.TotalSeconds);
                return space;
            }
            catch (DataDirectoryInUseException) when (waited.Elapsed < LockWait)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellation);
            }
        }
    }

    /// <summary>A clean hand-over (deactivation, silo shutdown): checkpoint with the index snapshot, then release the directory.</summary>
    public void Close(int shard)
    {
        if (!_open.TryRemove(shard, out var space)) return;
        using (space) space.Collection.Checkpoint(saveIndex: true);
    }

    public void Dispose()
    {
        foreach (var shard in _open.Keys)
            if (_open.TryRemove(shard, out var space))
                space.Dispose();
        if (_encoder.IsValueCreated) _encoder.Value.Dispose();
    }
}
