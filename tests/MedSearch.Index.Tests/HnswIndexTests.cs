using Xunit;

namespace MedSearch.Index.Tests;

public sealed class HnswIndexTests : IDisposable
{
    private const int Dims = 64;
    private static readonly HnswOptions Defaults = new();
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "medsearch-index-tests", Guid.NewGuid().ToString("N"));

    public HnswIndexTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string FilePath(string name = "index.usearch") => Path.Combine(_directory, name);

    private static float[][] UnitVectors(int count, int seed, int dims = Dims)
    {
        var random = new Random(seed);
        var vectors = new float[count][];
        for (int v = 0; v < count; v++)
        {
            var vector = new float[dims];
            double norm = 0;
            for (int i = 0; i < dims; i++)
            {
                // Box-Muller: Gaussian components make directions uniform on the sphere.
                vector[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
                norm += vector[i] * vector[i];
            }
            for (int i = 0; i < dims; i++) vector[i] /= (float)Math.Sqrt(norm);
            vectors[v] = vector;
        }
        return vectors;
    }

    private static HnswIndex Build(float[][] vectors, HnswOptions? options = null)
    {
        var index = HnswIndex.Create(Dims, options ?? Defaults);
        for (int i = 0; i < vectors.Length; i++) index.Add(KeyOf(i), vectors[i]);
        return index;
    }

    // Keys far from 0..n so that an index/key mix-up cannot pass by accident.
    private static ulong KeyOf(int i) => 1_000_000_007UL * (ulong)(i + 1);

    private static (ulong[] Keys, float[] Similarities) Search(IVectorIndex index, float[] query, int k)
    {
        var keys = new ulong[k];
        var similarities = new float[k];
        int found = index.Search(query, keys, similarities);
        return (keys[..found], similarities[..found]);
    }

    [Fact]
    public void A_stored_vector_is_its_own_nearest_neighbour()
    {
        var vectors = UnitVectors(1000, seed: 1);
        using var index = Build(vectors);
        Assert.Equal(1000, index.Count);
        Assert.Equal(Dims, index.Dimensions);

        for (int i = 0; i < vectors.Length; i += 10)
        {
            var (keys, similarities) = Search(index, vectors[i], 5);
            Assert.Equal(KeyOf(i), keys[0]);
            Assert.True(similarities[0] >= 0.999f, $"self-similarity {similarities[0]}");
        }
    }

    [Fact]
    public void Hits_are_sorted_most_similar_first_and_match_true_cosine()
    {
        var vectors = UnitVectors(500, seed: 2);
        using var index = Build(vectors);
        foreach (var query in UnitVectors(20, seed: 3))
        {
            var (keys, similarities) = Search(index, query, 20);
            Assert.Equal(20, keys.Length);
            for (int i = 1; i < similarities.Length; i++) Assert.True(similarities[i - 1] >= similarities[i]);
            for (int i = 0; i < keys.Length; i++)
            {
                var stored = vectors[(int)(keys[i] / 1_000_000_007UL) - 1];
                Assert.Equal(Dot(stored, query), similarities[i], 0.0001f);
            }
        }
    }

    [Fact]
    public void Search_returns_fewer_hits_than_asked_when_the_index_is_small()
    {
        var vectors = UnitVectors(3, seed: 4);
        using var index = Build(vectors);
        var (keys, _) = Search(index, vectors[0], 10);
        Assert.Equal(3, keys.Length);
        using var empty = HnswIndex.Create(Dims, Defaults);
        Assert.Empty(Search(empty, vectors[0], 10).Keys);
    }

    [Fact]
    public void Adding_an_existing_key_replaces_its_vector()
    {
        var vectors = UnitVectors(300, seed: 5);
        using var index = Build(vectors);
        var replacement = UnitVectors(1, seed: 6)[0];

        index.Add(KeyOf(7), replacement);

        Assert.Equal(300, index.Count);
        var (keys, similarities) = Search(index, replacement, 1);
        Assert.Equal(KeyOf(7), keys[0]);
        Assert.True(similarities[0] >= 0.999f);
        var (oldKeys, _) = Search(index, vectors[7], 300);
        var position = Array.IndexOf(oldKeys, KeyOf(7));
        Assert.True(position > 0, "key 7 still answers its old vector first");
    }

    [Fact]
    public void Remove_drops_the_key_from_results_and_count()
    {
        var vectors = UnitVectors(200, seed: 7);
        using var index = Build(vectors);

        Assert.True(index.Contains(KeyOf(3)));
        Assert.True(index.Remove(KeyOf(3)));
        Assert.False(index.Remove(KeyOf(3)));
        Assert.False(index.Contains(KeyOf(3)));
        Assert.Equal(199, index.Count);
        Assert.DoesNotContain(KeyOf(3), Search(index, vectors[3], 200).Keys);

        index.Add(KeyOf(3), vectors[3]);
        Assert.Equal(200, index.Count);
        Assert.Equal(KeyOf(3), Search(index, vectors[3], 1).Keys[0]);
    }

    [Fact]
    public void Unusable_vectors_are_rejected_with_what_was_wrong()
    {
        using var index = HnswIndex.Create(Dims, Defaults);
        var keys = new ulong[5];
        var similarities = new float[5];

        var error = Assert.Throws<ArgumentException>(() => index.Add(1, new float[Dims - 1]));
        Assert.Contains($"{Dims - 1} dimensions", error.Message);
        Assert.Contains($"expects {Dims}", error.Message);
        Assert.Throws<ArgumentException>(() => index.Add(1, new float[Dims + 1]));

        var withNaN = UnitVectors(1, seed: 8)[0];
        withNaN[40] = float.NaN;
        error = Assert.Throws<ArgumentException>(() => index.Add(1, withNaN));
        Assert.Contains("index 40", error.Message);
        var withInfinity = UnitVectors(1, seed: 8)[0];
        withInfinity[Dims - 1] = float.PositiveInfinity;
        Assert.Throws<ArgumentException>(() => index.Add(1, withInfinity));
        Assert.Throws<ArgumentException>(() => index.Add(1, new float[Dims]));

        Assert.Throws<ArgumentException>(() => index.Search(new float[3], keys, similarities));
        Assert.Throws<ArgumentException>(() => index.Search(withNaN, keys, similarities));
        Assert.Throws<ArgumentException>(() => index.Search(UnitVectors(1, seed: 9)[0], keys, new float[4]));
        Assert.Equal(0, index.Count);
    }

    [Fact]
    public void Save_then_load_gives_identical_results()
    {
        var vectors = UnitVectors(2000, seed: 10);
        var queries = UnitVectors(50, seed: 11);
        using var original = Build(vectors);
        original.Remove(KeyOf(5));
        original.Save(FilePath());

        using var loaded = HnswIndex.Load(FilePath(), Dims, Defaults);
        Assert.Equal(original.Count, loaded.Count);
        Assert.False(loaded.Contains(KeyOf(5)));
        foreach (var query in queries)
        {
            var expected = Search(original, query, 10);
            var actual = Search(loaded, query, 10);
            Assert.Equal(expected.Keys, actual.Keys);
            Assert.Equal(expected.Similarities, actual.Similarities);
        }

        // A loaded index has no spare capacity; it must grow on the next add.
        var extra = UnitVectors(100, seed: 12);
        for (int i = 0; i < extra.Length; i++) loaded.Add(KeyOf(10_000 + i), extra[i]);
        Assert.Equal(original.Count + 100, loaded.Count);
        Assert.Equal(KeyOf(10_050), Search(loaded, extra[50], 1).Keys[0]);
        Assert.False(File.Exists(FilePath() + ".tmp"));
    }

    [Fact]
    public void Saving_over_an_existing_file_replaces_it()
    {
        using var index = Build(UnitVectors(100, seed: 13));
        index.Save(FilePath());
        index.Add(KeyOf(500), UnitVectors(1, seed: 14)[0]);
        index.Save(FilePath());

        using var loaded = HnswIndex.Load(FilePath(), Dims, Defaults);
        Assert.Equal(101, loaded.Count);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.999)]
    public void A_truncated_file_is_refused(double keep)
    {
        using (var index = Build(UnitVectors(500, seed: 15))) index.Save(FilePath());
        var bytes = File.ReadAllBytes(FilePath());
        File.WriteAllBytes(FilePath(), bytes[..(int)(bytes.Length * keep)]);

        var error = Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath(), Dims, Defaults));
        Assert.Contains("truncated", error.Message);
        Assert.Contains(FilePath(), error.Message);
    }

    [Fact]
    public void A_file_shorter_than_the_header_is_refused()
    {
        File.WriteAllBytes(FilePath(), new byte[10]);
        var error = Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath(), Dims, Defaults));
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void A_corrupted_byte_is_detected()
    {
        using (var index = Build(UnitVectors(500, seed: 16))) index.Save(FilePath());
        var bytes = File.ReadAllBytes(FilePath());
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(FilePath(), bytes);

        var error = Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath(), Dims, Defaults));
        Assert.Contains("corrupt", error.Message);
    }

    [Fact]
    public void An_index_of_other_dimensions_is_refused()
    {
        using (var index = Build(UnitVectors(100, seed: 17))) index.Save(FilePath());
        var error = Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath(), Dims * 2, Defaults));
        Assert.Contains($"holds {Dims}-dimensional vectors, expected {Dims * 2}", error.Message);
    }

    [Fact]
    public void A_graph_built_with_a_smaller_ef_construction_than_the_options_is_refused()
    {
        // The search expansion is tuned to the graph's quality, which USearch does not record: the file does.
        var vectors = UnitVectors(300, seed: 20);
        using (var index = Build(vectors, Defaults with { ExpansionAdd = 64 })) index.Save(FilePath());

        var error = Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath(), Dims, Defaults with { ExpansionAdd = 65 }));
        Assert.Contains("built with ef construction 64; this index builds with 65", error.Message);
        using var same = HnswIndex.Load(FilePath(), Dims, Defaults with { ExpansionAdd = 64 });
        using var lower = HnswIndex.Load(FilePath(), Dims, Defaults with { ExpansionAdd = 32 });
        Assert.Equal(KeyOf(7), Search(lower, vectors[7], 1).Keys[0]);

        // Saved again by options of less, the record falls to theirs: the nodes they add are linked with less.
        lower.Save(FilePath("lower.usearch"));
        Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath("lower.usearch"), Dims, Defaults with { ExpansionAdd = 64 }));
    }

    [Fact]
    public void Missing_and_foreign_files_are_refused()
    {
        Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath("missing.usearch"), Dims, Defaults));
        File.WriteAllText(FilePath("notes.txt"), new string('x', 500));
        var error = Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath("notes.txt"), Dims, Defaults));
        Assert.Contains("not a MedSearch HNSW index", error.Message);
    }

    [Fact]
    public void Recall_at_10_is_at_least_95_percent_against_brute_force()
    {
        var vectors = UnitVectors(5000, seed: 18);
        var queries = UnitVectors(200, seed: 19);
        // Uniformly random directions in 64-d have no cluster structure, the hardest case for HNSW: a search
        // expansion of 64 reaches about 0.90 recall here, 128 about 0.98.
        using var index = Build(vectors, Defaults with { ExpansionSearch = 128 });

        double recall = RecallAt10(index, vectors, queries);
        Assert.True(recall >= 0.95, $"recall@10 = {recall:F3}");
    }

    [Fact]
    public void Load_applies_the_search_expansion_of_the_options()
    {
        var vectors = UnitVectors(5000, seed: 18);
        var queries = UnitVectors(100, seed: 19);
        using (var index = Build(vectors)) index.Save(FilePath());

        // USearch does not store the expansion, so a wide one must be set again after loading to take effect.
        using var narrow = HnswIndex.Load(FilePath(), Dims, Defaults with { ExpansionSearch = 10 });
        using var wide = HnswIndex.Load(FilePath(), Dims, Defaults with { ExpansionSearch = 512 });
        double narrowRecall = RecallAt10(narrow, vectors, queries);
        double wideRecall = RecallAt10(wide, vectors, queries);
        Assert.True(wideRecall >= 0.99, $"recall@10 with expansion 512 = {wideRecall:F3}");
        Assert.True(narrowRecall < 0.9, $"recall@10 with expansion 10 = {narrowRecall:F3}");
    }

    private static double RecallAt10(IVectorIndex index, float[][] vectors, float[][] queries)
    {
        int hits = 0;
        foreach (var query in queries)
        {
            var exact = Enumerable.Range(0, vectors.Length)
                .OrderByDescending(i => Dot(vectors[i], query))
                .Take(10)
                .Select(KeyOf)
                .ToHashSet();
            hits += Search(index, query, 10).Keys.Count(exact.Contains);
        }
        return hits / (10.0 * queries.Length);
    }

    [Fact]
    public async Task Concurrent_searches_and_adds_stay_consistent()
    {
        // More searchers than cores, so searches also queue for USearch's per-thread contexts.
        int searchers = Environment.ProcessorCount * 2 + 2;
        const int writers = 2;
        const int perWriter = 1500;
        var vectors = UnitVectors(writers * perWriter, seed: 20);
        using var index = Build(vectors[..100]);
        var added = new int[writers];
        using var done = new CancellationTokenSource();

        var writerTasks = Enumerable.Range(0, writers).Select(w => Task.Factory.StartNew(() =>
        {
            // Writer w adds its own slice; the first 100 vectors were added up front.
            for (int i = Math.Max(w * perWriter, 100); i < (w + 1) * perWriter; i++)
            {
                index.Add(KeyOf(i), vectors[i]);
                Volatile.Write(ref added[w], i);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        var searcherTasks = Enumerable.Range(0, searchers).Select(s => Task.Factory.StartNew(() =>
        {
            var random = new Random(s);
            var keys = new ulong[10];
            var similarities = new float[10];
            int searches = 0;
            while (!done.IsCancellationRequested || searches < 50)
            {
                int w = random.Next(writers);
                int last = Volatile.Read(ref added[w]);
                if (last < Math.Max(w * perWriter, 100)) continue;
                int i = random.Next(Math.Max(w * perWriter, 100), last + 1);
                int found = index.Search(vectors[i], keys, similarities);
                Assert.True(found > 0);
                Assert.Equal(KeyOf(i), keys[0]);
                searches++;
            }
        }, TaskCreationOptions.LongRunning)).ToArray();

        await Task.WhenAll(writerTasks);
        done.Cancel();
        await Task.WhenAll(searcherTasks);

        Assert.Equal(writers * perWriter, index.Count);
        for (int i = 0; i < vectors.Length; i += 7) Assert.Equal(KeyOf(i), Search(index, vectors[i], 1).Keys[0]);
    }

    [Fact]
    public async Task Searches_beyond_the_build_threads_run_at_once_up_to_ConcurrentSearches()
    {
        // Each search's filter holds it inside USearch's graph walk, where it holds a search context, until the
        // test lets go. More vectors than the initial capacity: the contexts must survive the graph's growth.
        // More than the cores: USearch's own default is one context per hardware thread.
        int concurrent = Environment.ProcessorCount + 2;
        var vectors = UnitVectors(1500, seed: 30);
        using var index = Build(vectors, new HnswOptions { Threads = 1, ConcurrentSearches = concurrent });
        using var entered = new SemaphoreSlim(0);
        using var release = new ManualResetEventSlim();
        var searches = Enumerable.Range(0, concurrent + 1).Select(s => Task.Factory.StartNew(() =>
        {
            bool first = true;
            var filter = new Predicate(_ =>
            {
                if (first)
                {
                    first = false;
                    entered.Release();
                    release.Wait(TimeSpan.FromSeconds(60));
                }
                return true;
            });
            var keys = new ulong[5];
            var similarities = new float[5];
            int found = index.Search(vectors[s], keys, similarities, filter, HnswIndex.Plan.Graph);
            return (Found: found, Top: keys[0]);
        }, TaskCreationOptions.LongRunning)).ToArray();

        for (int i = 0; i < concurrent; i++)
            Assert.True(await entered.WaitAsync(TimeSpan.FromSeconds(30)), $"only {i} of {concurrent} searches ran at once");
        // The one beyond them waits for a context to come free instead of failing for want of one.
        Assert.False(await entered.WaitAsync(TimeSpan.FromMilliseconds(300)), "a search beyond ConcurrentSearches ran");
        release.Set();
        var results = await Task.WhenAll(searches);
        for (int s = 0; s < results.Length; s++)
        {
            Assert.Equal(5, results[s].Found);
            Assert.Equal(KeyOf(s), results[s].Top);
        }
    }

    [Fact]
    public void Use_after_dispose_throws()
    {
        var index = Build(UnitVectors(10, seed: 21));
        index.Dispose();
        index.Dispose();
        Assert.Throws<ObjectDisposedException>(() => index.Count);
        Assert.Throws<ObjectDisposedException>(() => index.Add(1, UnitVectors(1, seed: 22)[0]));
    }

    [Fact]
    public void Invalid_options_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => HnswIndex.Create(Dims, new HnswOptions { Connectivity = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => HnswIndex.Create(Dims, new HnswOptions { ExpansionSearch = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => HnswIndex.Create(Dims, new HnswOptions { ConcurrentSearches = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => HnswIndex.Create(0, Defaults));
    }

    private static float Dot(float[] a, float[] b)
    {
        float sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }
}
