using MedSearch.Storage.Records;
using Xunit;

namespace MedSearch.Storage.Tests;

public sealed class CaseStoreTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "medsearch-store-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    // Small enough that a few thousand records push the oldest out of memory onto disk.
    private static readonly CaseStoreOptions TinyMemory = new() { MemorySize = 1 << 15, PageSize = 1 << 12, IndexSize = 1 << 10 };

    private static readonly CaseStoreOptions Small = new() { MemorySize = 1 << 22, PageSize = 1 << 16, IndexSize = 1 << 12 };

    private static CaseRecord Case(ulong id, int version = 0, int dimensions = 16)
    {
        var record = new CaseRecord
        {
            Id = id,
            Key = $"file:case-{id}.png",
            Source = $"/data/case-{id}.png",
            ModelId = "test-model",
            IndexedUnixMs = 1_700_000_000_000 + version,
            Width = 512,
            Height = 512 + version,
        };
        record.Labels.Add(version % 2 == 0 ? "normal" : "pneumonia");
        record.Metadata["version"] = version.ToString();
        for (int i = 0; i < dimensions; i++) record.Embedding.Add(id + i * 0.25f + version);
        return record;
    }

    [Fact]
    public void Upsert_get_update_delete()
    {
        using var store = CaseStore.Open(_directory, Small);

        Assert.False(store.TryGet(7, out _));
        store.Upsert(Case(7));
        Assert.True(store.TryGet(7, out var read));
        Assert.Equal(Case(7), read);

        store.Upsert(Case(7, version: 3));
        Assert.True(store.TryGet(7, out read));
        Assert.Equal(Case(7, version: 3), read);

        Assert.True(store.Delete(7));
        Assert.False(store.TryGet(7, out _));
        Assert.False(store.Delete(7));
    }

    [Fact]
    public void Count_tracks_inserts_updates_and_deletes()
    {
        using var store = CaseStore.Open(_directory, Small);
        for (ulong id = 1; id <= 50; id++) store.Upsert(Case(id));
        Assert.Equal(50, store.Count);

        for (ulong id = 1; id <= 50; id += 2) store.Upsert(Case(id, version: 1));
        Assert.Equal(50, store.Count);

        for (ulong id = 1; id <= 10; id++) Assert.True(store.Delete(id));
        Assert.False(store.Delete(10_000));
        Assert.Equal(40, store.Count);

        store.Upsert(Case(3, version: 2));
        Assert.Equal(41, store.Count);
    }

    [Fact]
    public void Scan_returns_each_live_id_once_with_its_latest_value()
    {
        using var store = CaseStore.Open(_directory, Small);
        var expected = new Dictionary<ulong, CaseRecord>();
        for (ulong id = 1; id <= 200; id++) expected[id] = Case(id);
        foreach (var record in expected.Values) store.Upsert(record);
        // A checkpoint makes the first versions read-only, so the updates below append second copies.
        store.Checkpoint();
        for (ulong id = 1; id <= 200; id += 3)
        {
            expected[id] = Case(id, version: 5);
            store.Upsert(expected[id]);
        }
        for (ulong id = 2; id <= 200; id += 7)
        {
            expected.Remove(id);
            store.Delete(id);
        }

        var scanned = store.Scan().ToList();

        Assert.Equal(scanned.Count, scanned.Select(r => r.Id).Distinct().Count());
        Assert.Equal(expected.Keys.Order(), scanned.Select(r => r.Id).Order());
        foreach (var record in scanned) Assert.Equal(expected[record.Id], record);
        Assert.Equal(expected.Count, store.Count);
    }

    [Fact]
    public void Checkpoint_then_reopen_recovers_the_same_contents()
    {
        var expected = new Dictionary<ulong, CaseRecord>();
        CheckpointToken token;
        using (var store = CaseStore.Open(_directory, Small))
        {
            Assert.Null(store.LastCheckpoint);
            for (ulong id = 1; id <= 300; id++) expected[id] = Case(id);
            foreach (var record in expected.Values) store.Upsert(record);
            store.Checkpoint();
            for (ulong id = 1; id <= 300; id += 4)
            {
                expected[id] = Case(id, version: 9);
                store.Upsert(expected[id]);
            }
            for (ulong id = 2; id <= 300; id += 5)
            {
                expected.Remove(id);
                Assert.True(store.Delete(id));
            }
            token = store.Checkpoint();
            Assert.Equal(token, store.LastCheckpoint);
            Assert.True(token.Position > 0);
        }

        using (var reopened = CaseStore.Open(_directory, Small))
        {
            Assert.Equal(token, reopened.LastCheckpoint);
            Assert.Equal(expected.Count, reopened.Count);
            for (ulong id = 1; id <= 300; id++)
            {
                if (expected.TryGetValue(id, out var want))
                {
                    Assert.True(reopened.TryGet(id, out var got), $"case {id} lost");
                    Assert.Equal(want, got);
                }
                else
                {
                    Assert.False(reopened.TryGet(id, out _), $"deleted case {id} came back");
                }
            }
            Assert.Equal(expected.Keys.Order(), reopened.Scan().Select(r => r.Id).Order());
        }

        // Only the latest checkpoint is kept.
        var checkpointDirectories = Directory.GetDirectories(Path.Combine(_directory, "checkpoints"), "*", SearchOption.AllDirectories)
            .Where(d => Guid.TryParse(Path.GetFileName(d), out _))
            .Select(d => Guid.Parse(Path.GetFileName(d)))
            .Distinct()
            .ToList();
        Assert.Equal([token.Token], checkpointDirectories);
    }

    [Fact]
    public void A_new_store_that_was_never_checkpointed_reopens_empty()
    {
        using (var store = CaseStore.Open(_directory, Small))
            Assert.Equal(0, store.Count);
        using (var reopened = CaseStore.Open(_directory, Small))
        {
            Assert.Equal(0, reopened.Count);
            Assert.Null(reopened.LastCheckpoint);
            Assert.Empty(reopened.Scan());
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Records_evicted_to_disk_are_read_back(bool readCache)
    {
        const int records = 3000;
        var options = TinyMemory with { ReadCacheEnabled = readCache };
        using (var store = CaseStore.Open(_directory, options))
        {
            for (ulong id = 1; id <= records; id++) store.Upsert(Case(id, dimensions: 32));

            // 3000 records of ~250 bytes are 20x the 32 KiB in memory: the early ones live only in the log file.
            Assert.True(new FileInfo(Path.Combine(_directory, "log", "hlog.0")).Length > TinyMemory.MemorySize);
            for (int pass = 0; pass < 2; pass++)
            {
                for (ulong id = 1; id <= records; id++)
                {
                    Assert.True(store.TryGet(id, out var read), $"case {id} not found");
                    Assert.Equal(Case(id, dimensions: 32), read);
                }
            }

            // Updating and deleting disk-resident cases has to find them there first (Count stays exact).
            store.Upsert(Case(1, version: 1, dimensions: 32));
            Assert.True(store.Delete(2));
            Assert.Equal(records - 1, store.Count);
            store.Checkpoint();
        }

        using var reopened = CaseStore.Open(_directory, options);
        Assert.Equal(records - 1, reopened.Count);
        Assert.True(reopened.TryGet(1, out var updated));
        Assert.Equal(Case(1, version: 1, dimensions: 32), updated);
        Assert.False(reopened.TryGet(2, out _));
        Assert.True(reopened.TryGet(3, out var old));
        Assert.Equal(Case(3, dimensions: 32), old);
        Assert.Equal(records - 1, reopened.Scan().Count());
    }

    [Fact]
    public void Records_larger_than_the_inline_buffer_round_trip()
    {
        using var store = CaseStore.Open(_directory, Small);
        var big = Case(11, dimensions: 2048);
        store.Upsert(big);
        Assert.True(store.TryGet(11, out var read));
        Assert.Equal(big, read);
    }

    [Fact]
    public async Task Concurrent_upserts_reads_and_checkpoints_keep_every_record_and_an_exact_count()
    {
        const int threads = 4;
        const int perThread = 2000;
        using var store = CaseStore.Open(_directory, TinyMemory with { MemorySize = 1 << 18 });
        using var stop = new CancellationTokenSource();

        var checkpointer = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                store.Checkpoint();
                Thread.Sleep(5);
            }
        });
        var writers = Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(() =>
        {
            var random = new Random(t);
            for (int i = 0; i < perThread; i++)
            {
                // Half the ids are shared by all threads, so the same key is inserted concurrently.
                ulong id = i % 2 == 0 ? (ulong)(i + 1) : (ulong)(1_000_000 * (t + 1) + i);
                store.Upsert(Case(id, version: t));
                ulong probe = (ulong)random.Next(1, i + 2);
                if (store.TryGet(probe, out var read)) Assert.Equal(probe, read.Id);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();

        await Task.WhenAll(writers);
        stop.Cancel();
        await checkpointer;

        long distinct = perThread / 2 + threads * (perThread / 2);
        Assert.Equal(distinct, store.Count);
        Assert.Equal(distinct, store.Scan().Count());
        for (int t = 0; t < threads; t++)
            for (int i = 1; i < perThread; i += 2)
                Assert.True(store.TryGet((ulong)(1_000_000 * (t + 1) + i), out _));
    }

    [Fact]
    public void A_store_from_a_newer_format_version_is_refused()
    {
        using (CaseStore.Open(_directory, Small)) { }
        File.WriteAllText(Path.Combine(_directory, "FORMAT"), "medsearch-store 2\n");

        var error = Assert.Throws<StoreException>(() => CaseStore.Open(_directory, Small));
        Assert.Contains(Path.GetFullPath(_directory), error.Message);
        Assert.Contains("newer", error.Message);
        Assert.Contains("format 2", error.Message);
    }

    [Fact]
    public void An_unreadable_format_file_is_refused()
    {
        using (CaseStore.Open(_directory, Small)) { }
        File.WriteAllText(Path.Combine(_directory, "FORMAT"), "something else");

        var error = Assert.Throws<StoreException>(() => CaseStore.Open(_directory, Small));
        Assert.Contains("something else", error.Message);
    }

    [Fact]
    public void A_directory_holding_something_else_is_refused()
    {
        Directory.CreateDirectory(_directory);
        File.WriteAllText(Path.Combine(_directory, "notes.txt"), "not a store");

        var error = Assert.Throws<StoreException>(() => CaseStore.Open(_directory, Small));
        Assert.Contains("no FORMAT file", error.Message);
    }

    [Fact]
    public void Corrupt_checkpoint_metadata_fails_to_open_instead_of_opening_empty()
    {
        using (var store = CaseStore.Open(_directory, Small))
        {
            for (ulong id = 1; id <= 20; id++) store.Upsert(Case(id));
            store.Checkpoint();
        }
        var metadata = Directory.GetFiles(Path.Combine(_directory, "checkpoints"), "*", SearchOption.AllDirectories)
            .Where(f => f.Contains("cpr-checkpoints", StringComparison.Ordinal))
            .ToList();
        Assert.NotEmpty(metadata);
        foreach (var file in metadata) File.WriteAllBytes(file, new byte[new FileInfo(file).Length]);

        var error = Assert.Throws<StoreException>(() => CaseStore.Open(_directory, Small));
        Assert.Contains(Path.GetFullPath(_directory), error.Message);
        Assert.Contains("cannot be recovered", error.Message);
    }

    [Fact]
    public void A_record_larger_than_a_page_is_rejected_with_the_limit()
    {
        using var store = CaseStore.Open(_directory, TinyMemory);
        var error = Assert.Throws<ArgumentException>(() => store.Upsert(Case(5, dimensions: 2048)));
        Assert.Contains("PageSize", error.Message);
        Assert.Equal(0, store.Count);
    }

    [Theory]
    [InlineData(300_000_000L, 1L << 16, 1L << 10)]
    [InlineData(1L << 20, 1L << 20, 1L << 10)]
    [InlineData(1L << 20, 1L << 12, 1000L)]
    public void Sizes_that_are_not_usable_powers_of_two_are_rejected(long memory, long page, long index)
    {
        var options = new CaseStoreOptions { MemorySize = memory, PageSize = page, IndexSize = index };
        Assert.Throws<ArgumentOutOfRangeException>(() => CaseStore.Open(_directory, options));
        Assert.False(Directory.Exists(_directory));
    }
}
