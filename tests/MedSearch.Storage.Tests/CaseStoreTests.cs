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

    private static string Marker(ulong id, string version) => $"MARKER-{id:D6}-{version}-";

    /// <summary>A case whose source path is a byte string found nowhere else, to look for in the raw files.</summary>
    private static CaseRecord Marked(ulong id, string version)
    {
        var record = Case(id, dimensions: 8);
        record.Source = Marker(id, version) + "/data.png";
        return record;
    }

    private long LogBytes() => Directory.GetFiles(Path.Combine(_directory, "log")).Sum(f => new FileInfo(f).Length);

    private bool LogContains(string marker) => FilesContain(Path.Combine(_directory, "log"), marker);

    private bool AnyFileContains(string marker) => FilesContain(_directory, marker);

    private static bool FilesContain(string directory, string marker)
    {
        var needle = System.Text.Encoding.ASCII.GetBytes(marker);
        return Directory.GetFiles(directory, "*", SearchOption.AllDirectories)
            .Any(file => File.ReadAllBytes(file).AsSpan().IndexOf(needle) >= 0);
    }

    private static void AssertContents(CaseStore store, Dictionary<ulong, CaseRecord> expected, ulong[] deleted)
    {
        Assert.Equal(expected.Count, store.Count);
        foreach (var (id, record) in expected)
        {
            Assert.True(store.TryGet(id, out var read), $"case {id} lost");
            Assert.Equal(record, read);
            AssertHitReads(store, record);
        }
        foreach (ulong id in deleted) Assert.False(store.TryGet(id, out _), $"deleted case {id} came back");
        Assert.Equal(expected.Keys.Order(), store.Scan().Select(r => r.Id).Order());
    }

    private static void AssertHitReads(CaseStore store, CaseRecord stored)
    {
        var expected = stored.Clone();
        expected.Embedding.Clear();
        Assert.Equal(expected, ReadHit(store, stored.Id, withThumbnail: true));
        expected.Thumbnail = Google.Protobuf.ByteString.Empty;
        Assert.Equal(expected, ReadHit(store, stored.Id, withThumbnail: false));
    }

    /// <summary>One case read as a search hit, both ways (awaited first: a read cache may keep it for the second), which must agree.</summary>
    private static CaseRecord? ReadHit(CaseStore store, ulong id, bool withThumbnail)
    {
        var awaited = new CaseRecord?[1];
        store.ReadHitsAsync([id], 0, 1, withThumbnail, awaited).AsTask().GetAwaiter().GetResult();
        var waited = new CaseRecord?[1];
        store.ReadHits([id], 0, 1, withThumbnail, waited);
        Assert.Equal(waited[0], awaited[0]);
        return waited[0];
    }

    [Fact]
    public void Hit_reads_leave_out_the_embedding_and_the_thumbnail_unless_asked_and_keep_every_other_field()
    {
        using var store = CaseStore.Open(_directory, Small);
        var full = Case(21, dimensions: 512);
        full.ContentSha256 = Google.Protobuf.ByteString.CopyFrom(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
        full.PixelSha256 = Google.Protobuf.ByteString.CopyFrom(Enumerable.Range(0, 32).Select(i => (byte)(255 - i)).ToArray());
        full.Thumbnail = Google.Protobuf.ByteString.CopyFrom(new byte[3000]);
        full.Metadata["modality"] = "CR";
        full.Labels.Add("effusion");
        // A large embedding, none at all, and no field after the embedding.
        var cases = new[] { full, Case(22, dimensions: 2048), Case(23, dimensions: 0), new CaseRecord { Id = 24, Embedding = { 1f, 2f } } };
        foreach (var record in cases) store.Upsert(record);
        foreach (var record in cases) AssertHitReads(store, record);
        Assert.Null(ReadHit(store, 99, withThumbnail: true));
        Assert.True(store.TryGet(21, out var withEmbedding));
        Assert.Equal(512, withEmbedding.Embedding.Count);
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
    public async Task Records_evicted_to_disk_are_read_back(bool readCache)
    {
        const int records = 3000;
        var options = TinyMemory with { ReadCacheEnabled = readCache };
        using (var store = CaseStore.Open(_directory, options))
        {
            for (ulong id = 1; id <= records; id++) store.Upsert(Case(id, dimensions: 32));

            // 3000 records of ~250 bytes are 20x the 32 KiB in memory: the early ones live only in the log files.
            Assert.True(LogBytes() > TinyMemory.MemorySize);
            for (int pass = 0; pass < 2; pass++)
            {
                for (ulong id = 1; id <= records; id++)
                {
                    Assert.True(store.TryGet(id, out var read), $"case {id} not found");
                    Assert.Equal(Case(id, dimensions: 32), read);
                    AssertHitReads(store, read);
                }
            }
            // A search's hits read together, from disk and memory, with a missing case and a repeat, from an offset.
            ulong[] batch = [0, 1, 2, 1500, records - 1, records, records + 5, 7, 3, 7];
            var waited = new CaseRecord?[batch.Length];
            var awaited = new CaseRecord?[batch.Length];
            await store.ReadHitsAsync(batch, 1, batch.Length - 1, withThumbnail: false, awaited);
            store.ReadHits(batch, 1, batch.Length - 1, withThumbnail: false, waited);
            Assert.Null(waited[0]);
            Assert.Null(awaited[0]);
            for (int i = 1; i < batch.Length; i++)
            {
                var expected = batch[i] > records ? null : Case(batch[i], dimensions: 32);
                expected?.Embedding.Clear();
                Assert.Equal(expected, waited[i]);
                Assert.Equal(expected, awaited[i]);
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
        File.WriteAllText(Path.Combine(_directory, "FORMAT"), "medsearch-store 3\nlog-segment-bytes 65536\n");

        var error = Assert.Throws<StoreException>(() => CaseStore.Open(_directory, Small));
        Assert.Contains(Path.GetFullPath(_directory), error.Message);
        Assert.Contains("newer", error.Message);
        Assert.Contains("format 3", error.Message);
    }

    [Fact]
    public void A_store_from_before_compaction_is_refused_with_what_to_do()
    {
        using (CaseStore.Open(_directory, Small)) { }
        // Format 1 logs used FASTER's 1 GiB segments; opening them with page-sized segments would misread them.
        File.WriteAllText(Path.Combine(_directory, "FORMAT"), "medsearch-store 1\n");

        var error = Assert.Throws<StoreException>(() => CaseStore.Open(_directory, Small));
        Assert.Contains("format 1", error.Message);
        Assert.Contains("Re-index", error.Message);
    }

    [Fact]
    public void Pages_larger_than_the_stores_log_segments_are_refused()
    {
        using (CaseStore.Open(_directory, Small)) { }
        var error = Assert.Throws<StoreException>(() => CaseStore.Open(_directory, Small with { PageSize = Small.PageSize * 2 }));
        Assert.Contains($"{Small.PageSize}-byte log segments", error.Message);
        Assert.Contains("PageSize", error.Message);
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

    /// <summary>Folds changes in log order into the state they end in: the last write of each id wins.</summary>
    private static Dictionary<ulong, CaseRecord?> Replay(IEnumerable<StoreChange> changes)
    {
        var state = new Dictionary<ulong, CaseRecord?>();
        foreach (var change in changes) state[change.Id] = change.Record;
        return state;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Changes_since_a_checkpoint_replay_into_the_stores_state(bool reopen)
    {
        // Tiny memory: the older changes are read back from the log files, the newest from memory.
        var options = TinyMemory;
        CheckpointToken first;
        var expected = new Dictionary<ulong, CaseRecord?>();
        var store = CaseStore.Open(_directory, options);
        try
        {
            for (ulong id = 1; id <= 500; id++) store.Upsert(Case(id));
            first = store.Checkpoint();
            Assert.Empty(store.ChangesSince(first.Position));

            for (ulong id = 1; id <= 500; id += 7) store.Upsert((expected[id] = Case(id, version: 3))!);
            for (ulong id = 2; id <= 500; id += 11)
            {
                Assert.True(store.Delete(id));
                expected[id] = null;
            }
            // Written and deleted again after the checkpoint: in the mutable region, FASTER may mark it in place.
            for (ulong id = 1001; id <= 1040; id++) store.Upsert(Case(id));
            for (ulong id = 1001; id <= 1040; id += 2)
            {
                Assert.True(store.Delete(id));
                expected[id] = null;
            }
            for (ulong id = 1002; id <= 1040; id += 2) expected[id] = Case(id);
            // Written twice after the checkpoint: the second version must come out last.
            store.Upsert(Case(2000, version: 1));
            store.Upsert((expected[2000] = Case(2000, version: 2))!);
            var second = store.Checkpoint();
            Assert.Equal(first.Sequence + 1, second.Sequence);

            if (reopen)
            {
                store.Dispose();
                store = CaseStore.Open(_directory, options);
                Assert.Equal(second, store.LastCheckpoint);
            }

            var replayed = Replay(store.ChangesSince(first.Position));
            Assert.Equal(expected.Keys.Order(), replayed.Keys.Order());
            foreach (var (id, record) in expected) Assert.Equal(record, replayed[id]);
            // Every id whose last change is a write is live in the store with exactly that record, and no other.
            foreach (var (id, record) in replayed)
            {
                if (record is null) Assert.False(store.TryGet(id, out _), $"case {id} replays as deleted but is stored");
                else Assert.True(store.TryGet(id, out var stored) && stored.Equals(record), $"case {id} replays to another version than stored");
            }
            Assert.Empty(store.ChangesSince(store.TailAddress));
        }
        finally
        {
            store.Dispose();
        }
    }

    [Fact]
    public void Changes_cannot_be_read_from_below_the_compacted_log()
    {
        using var store = CaseStore.Open(_directory, TinyMemory);
        for (ulong id = 1; id <= 2000; id++) store.Upsert(Case(id));
        var before = store.Checkpoint();
        for (ulong id = 1; id <= 2000; id += 2) store.Delete(id);
        var compacted = store.Compact();
        Assert.True(store.BeginAddress > before.Position);
        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => store.ChangesSince(before.Position));
        Assert.Contains($"position {before.Position} is outside it", refused.Message);
        Assert.Equal(before.Sequence + 1, compacted.Sequence);
        // From the compaction's checkpoint on there is nothing to replay but what came after it.
        store.Upsert(Case(5000));
        Assert.Equal([5000UL], store.ChangesSince(compacted.Position).Select(c => c.Id));
    }

    [Fact]
    public void Compaction_removes_the_bytes_of_deleted_and_superseded_records_from_every_file()
    {
        const int records = 2000;
        var expected = new Dictionary<ulong, CaseRecord>();
        using (var store = CaseStore.Open(_directory, TinyMemory))
        {
            for (ulong id = 1; id <= records; id++) store.Upsert(expected[id] = Marked(id, "v1"));
            store.Checkpoint();
            // Deleted from the disk-resident start of the log, from its end, and (3001) while still in the mutable
            // region: the last record written, so it shares a log segment with the tail that compaction starts at.
            ulong[] deleted = [5, 17, 400, 1999, 2000, 3001];
            store.Upsert(Marked(3001, "v1"));
            foreach (ulong id in deleted)
            {
                Assert.True(store.Delete(id));
                expected.Remove(id);
            }
            store.Upsert(expected[30] = Marked(30, "v2"));
            store.Checkpoint();
            Assert.All(deleted, id => Assert.True(LogContains(Marker(id, "v1")), $"case {id} was never written to the log files"));
            Assert.True(LogContains(Marker(30, "v1")));

            var token = store.Compact();

            Assert.Equal(token, store.LastCheckpoint);
            Assert.All(deleted, id => Assert.False(AnyFileContains(Marker(id, "v1")), $"deleted case {id} is still in a file of the store"));
            Assert.False(AnyFileContains(Marker(30, "v1")), "the superseded version of case 30 is still in a file of the store");
            Assert.True(AnyFileContains(Marker(30, "v2")) && AnyFileContains(Marker(6, "v1")), "live records are missing from the files");
            AssertContents(store, expected, deleted);
        }

        using var reopened = CaseStore.Open(_directory, TinyMemory);
        AssertContents(reopened, expected, [5, 17, 400, 1999, 2000, 3001]);
    }

    [Fact]
    public void Compaction_shrinks_the_log_to_the_live_records()
    {
        using var store = CaseStore.Open(_directory, TinyMemory);
        for (ulong id = 1; id <= 2000; id++) store.Upsert(Case(id, dimensions: 32));
        for (ulong id = 1; id <= 2000; id++)
            if (id % 10 != 0) store.Delete(id);
        store.Checkpoint();
        long before = LogBytes();

        store.Compact();

        // 200 of 2000 records are live: the log keeps them, at most a page of padding, and the pages FASTER
        // preallocates at the tail.
        long after = LogBytes();
        Assert.True(after < before / 4, $"log files hold {after} bytes after compaction, {before} before");
        Assert.Equal(200, store.Count);
        Assert.Equal(200, store.Scan().Count());
    }

    [Fact]
    public void Compacting_an_empty_store_and_compacting_twice_work()
    {
        using (var store = CaseStore.Open(_directory, Small))
        {
            store.Compact();
            Assert.Equal(0, store.Count);
            for (ulong id = 1; id <= 100; id++) store.Upsert(Case(id));
            store.Delete(50);
            store.Compact();
            store.Upsert(Case(50, version: 2));
            store.Delete(51);
            store.Compact();
            Assert.Equal(99, store.Count);
        }
        using var reopened = CaseStore.Open(_directory, Small);
        Assert.Equal(99, reopened.Count);
        Assert.True(reopened.TryGet(50, out var revived));
        Assert.Equal(Case(50, version: 2), revived);
        Assert.False(reopened.TryGet(51, out _));
    }

    [Fact]
    public async Task Writes_and_reads_during_compaction_are_kept()
    {
        using var store = CaseStore.Open(_directory, TinyMemory with { MemorySize = 1 << 18 });
        for (ulong id = 1; id <= 3000; id++) store.Upsert(Case(id, dimensions: 32));
        for (ulong id = 1; id <= 3000; id += 2) store.Delete(id);
        store.Checkpoint();

        var writer = Task.Run(() =>
        {
            for (ulong id = 10_001; id <= 12_000; id++)
            {
                store.Upsert(Case(id, dimensions: 32));
                Assert.True(store.TryGet(id - 10_000 + (id % 2 == 0 ? 0UL : 1UL), out _));
            }
        });
        for (int i = 0; i < 3; i++) store.Compact();
        await writer;
        store.Compact();

        Assert.Equal(1500 + 2000, store.Count);
        for (ulong id = 2; id <= 3000; id += 2) Assert.True(store.TryGet(id, out _), $"case {id} lost");
        for (ulong id = 10_001; id <= 12_000; id++) Assert.True(store.TryGet(id, out _), $"case {id} lost");
        Assert.Equal(3500, store.Scan().Count());
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
