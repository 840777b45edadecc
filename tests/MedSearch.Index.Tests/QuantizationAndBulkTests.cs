using Xunit;

namespace MedSearch.Index.Tests;

public sealed class QuantizationAndBulkTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "medsearch-index-tests", Guid.NewGuid().ToString("N"));
    private readonly Clustered _set = new(6000, 64, seed: 41);

    public QuantizationAndBulkTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string FilePath(string name = "index.usearch") => Path.Combine(_directory, name);

    [Theory]
    [InlineData(Quantization.F32)]
    [InlineData(Quantization.F16)]
    [InlineData(Quantization.I8)]
    public void Every_quantisation_reaches_recall_99_with_exact_similarities(Quantization quantization)
    {
        using var index = _set.Build(new HnswOptions { Quantization = quantization });

        double recall = _set.Recall(index);
        Assert.True(recall >= 0.99, $"{quantization} recall@10 = {recall:F4}");

        // Quantised graphs are re-ranked with the f32 copy: the similarities are exact whatever the graph stores.
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        foreach (var query in _set.Queries.Take(20))
        {
            int found = index.Search(query, keys, similarities);
            for (int i = 0; i < found; i++)
                Assert.Equal(Clustered.Dot(_set.Vectors[Clustered.RowOf(keys[i])], query), similarities[i], 1e-5f);
        }
    }

    [Theory]
    [InlineData(Quantization.F32)]
    [InlineData(Quantization.I8)]
    public void Exact_search_equals_brute_force(Quantization quantization)
    {
        using var index = _set.Build(new HnswOptions { Quantization = quantization });
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        var flat = _set.Flat;
        var rows = new long[Clustered.K];
        var oracle = new float[Clustered.K];
        foreach (var query in _set.Queries)
        {
            int found = index.SearchExact(query, keys, similarities);
            Assert.Equal(Clustered.K, found);
            // Compared by similarity, as near-ties may swap places between float summation orders.
            var expected = _set.BruteForce(query);
            for (int i = 0; i < found; i++)
                Assert.Equal(Clustered.Dot(_set.Vectors[Clustered.RowOf(expected[i])], query), similarities[i], 1e-5f);
            Assert.True(keys.Intersect(expected).Count() >= Clustered.K - 1);

            // And against USearch's own brute-force kernel, an independent implementation.
            UsearchNative.ExactSearch(flat, query, _set.Dimensions, Clustered.K, rows, oracle);
            for (int i = 0; i < found; i++) Assert.Equal(oracle[i], similarities[i], 1e-5f);
        }
    }

    [Fact]
    public void Exact_search_with_a_filter_equals_filtered_brute_force()
    {
        using var index = _set.Build(new HnswOptions());
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        var set = new KeySet(_set.Keys.Where((_, row) => row % 3 == 0));
        foreach (var query in _set.Queries.Take(30))
        {
            int found = index.SearchExact(query, keys, similarities, set);
            var expected = _set.BruteForce(query, set.Accepts);
            Assert.Equal(expected.Length, found);
            for (int i = 0; i < found; i++)
                Assert.Equal(Clustered.Dot(_set.Vectors[Clustered.RowOf(expected[i])], query), similarities[i], 1e-5f);
        }
    }

    [Theory]
    [InlineData(Quantization.F32)]
    [InlineData(Quantization.I8)]
    public void Removed_keys_are_never_returned_before_or_after_save_and_load(Quantization quantization)
    {
        var options = new HnswOptions { Quantization = quantization };
        using var index = _set.Build(options);
        var removed = _set.Keys.Where((_, row) => row % 4 == 1).ToHashSet();
        foreach (ulong key in removed) Assert.True(index.Remove(key));
        Assert.Equal(_set.Vectors.Length - removed.Count, index.Count);

        AssertNeverReturned(index, removed);
        index.Save(FilePath());
        using var loaded = HnswIndex.Load(FilePath(), _set.Dimensions, options);
        Assert.Equal(index.Count, loaded.Count);
        Assert.All(removed, key => Assert.False(loaded.Contains(key)));
        AssertNeverReturned(loaded, removed);

        // Their own vectors, searched for directly, find other keys.
        var keys = new ulong[1];
        var similarities = new float[1];
        foreach (ulong key in removed.Take(50))
        {
            loaded.Search(_set.Vectors[Clustered.RowOf(key)], keys, similarities);
            Assert.NotEqual(key, keys[0]);
        }
    }

    private void AssertNeverReturned(HnswIndex index, HashSet<ulong> removed)
    {
        var keys = new ulong[50];
        var similarities = new float[50];
        var everything = new KeySet(_set.Keys);
        var predicate = new AcceptAll();
        foreach (var query in _set.Queries.Concat(removed.Take(50).Select(key => _set.Vectors[Clustered.RowOf(key)])))
        {
            foreach (var search in new Func<int>[]
            {
                () => index.Search(query, keys, similarities),
                () => index.SearchExact(query, keys, similarities),
                () => index.Search(query, keys, similarities, predicate),
                () => index.Search(query, keys, similarities, predicate, HnswIndex.Plan.Graph),
                // A key set naming removed keys: the exact path looks each one up.
                () => index.Search(query, keys, similarities, new KeySet(removed.Take(200))),
                () => index.SearchExact(query, keys, similarities, everything),
            })
            {
                int found = search();
                Assert.All(keys[..found], key => Assert.DoesNotContain(key, removed));
            }
        }
    }

    private sealed class AcceptAll : IKeyFilter
    {
        public bool Accepts(ulong key) => true;
    }

    [Theory]
    [InlineData(Quantization.F32)]
    [InlineData(Quantization.F16)]
    [InlineData(Quantization.I8)]
    public void Save_and_load_keep_results_and_similarities(Quantization quantization)
    {
        var options = new HnswOptions { Quantization = quantization };
        using var original = _set.Build(options);
        original.Save(FilePath());
        using var loaded = HnswIndex.Load(FilePath(), _set.Dimensions, options);

        var expectedKeys = new ulong[Clustered.K];
        var expectedSimilarities = new float[Clustered.K];
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        foreach (var query in _set.Queries)
        {
            Assert.Equal(original.Search(query, expectedKeys, expectedSimilarities), loaded.Search(query, keys, similarities));
            Assert.Equal(expectedKeys, keys);
            Assert.Equal(expectedSimilarities, similarities);
            loaded.SearchExact(query, keys, similarities);
            original.SearchExact(query, expectedKeys, expectedSimilarities);
            Assert.Equal(expectedSimilarities, similarities);
        }
    }

    [Fact]
    public void Loading_with_another_quantisation_is_refused_so_the_index_is_rebuilt()
    {
        using (var index = _set.Build(new HnswOptions { Quantization = Quantization.I8 })) index.Save(FilePath());
        var error = Assert.Throws<IndexFileException>(() => HnswIndex.Load(FilePath(), _set.Dimensions, new HnswOptions { Quantization = Quantization.F32 }));
        Assert.Contains("I8", error.Message);
        Assert.Contains("F32", error.Message);
    }

    [Fact]
    public void Parallel_bulk_add_matches_one_by_one_adds()
    {
        var options = new HnswOptions { Threads = 4 };
        using var bulk = _set.Build(options);
        using var sequential = HnswIndex.Create(_set.Dimensions, options);
        for (int row = 0; row < _set.Vectors.Length; row++) sequential.Add(Clustered.KeyOf(row), _set.Vectors[row]);

        Assert.Equal(sequential.Count, bulk.Count);
        Assert.All(_set.Keys, key => Assert.True(bulk.Contains(key)));
        double bulkRecall = _set.Recall(bulk), sequentialRecall = _set.Recall(sequential);
        Assert.True(bulkRecall >= 0.99 && Math.Abs(bulkRecall - sequentialRecall) <= 0.01,
            $"recall@10 {bulkRecall:F4} after AddRange, {sequentialRecall:F4} after one-by-one adds");

        // Every stored vector finds itself first: nodes that parallel adds left without a way in are re-inserted
        // or scored exactly.
        AssertEveryVectorFindsItself(bulk, _set);
        Assert.True(bulk.MemoryUsage > (long)_set.Vectors.Length * _set.Dimensions * sizeof(float),
            $"memory usage {bulk.MemoryUsage} does not even cover the f32 vectors");
    }

    [Theory]
    [InlineData(1, 20_000)]
    [InlineData(4, 20_000)]
    [InlineData(1, 2_000)]
    public void A_graph_with_unreachable_nodes_still_finds_every_vector_before_and_after_save_and_load(int threads, int count)
    {
        // Connectivity 4 leaves nodes no search can reach, some even after re-insertion: at 20k more than are scored
        // one by one (so they get a graph of their own), at 2k fewer.
        var set = new Clustered(count, 32, seed: 7);
        var options = new HnswOptions { Connectivity = 4, Threads = threads, Quantization = Quantization.F32 };
        using var index = set.Build(options);
        if (threads == 1)
            Assert.True(index.UnreachableCount > 0, "this graph was chosen for nodes re-insertion cannot reach; none were left");
        Assert.Equal(index.UnreachableCount > UnreachableKeys.ExactLimit, index.UnreachableKeysHaveGraph);
        Assert.Equal(count > 10_000, index.UnreachableKeysHaveGraph);
        AssertEveryVectorFindsItself(index, set);

        index.Save(FilePath());
        using var loaded = HnswIndex.Load(FilePath(), set.Dimensions, options);
        Assert.Equal(index.UnreachableCount, loaded.UnreachableCount);
        AssertEveryVectorFindsItself(loaded, set);

        // Removed keys leave the unreachable set and results; the rest still find themselves.
        int before = loaded.UnreachableCount;
        for (int row = 0; row < set.Vectors.Length; row += 2) loaded.Remove(Clustered.KeyOf(row));
        Assert.True(loaded.UnreachableCount <= before, $"{loaded.UnreachableCount} unreachable keys after removing half of the index, {before} before");
        var keys = new ulong[3];
        var similarities = new float[3];
        for (int row = 0; row < set.Vectors.Length; row++)
        {
            int found = loaded.Search(set.Vectors[row], keys, similarities);
            if (row % 2 == 0) Assert.DoesNotContain(Clustered.KeyOf(row), keys.AsSpan(0, found).ToArray());
            else Assert.Equal(Clustered.KeyOf(row), keys[0]);
        }
        for (int row = 1; row < set.Vectors.Length; row += 2) loaded.Remove(Clustered.KeyOf(row));
        Assert.Equal((0, 0), (loaded.Count, loaded.UnreachableCount));
    }

    private static void AssertEveryVectorFindsItself(HnswIndex index, Clustered set)
    {
        var keys = new ulong[1];
        var similarities = new float[1];
        var lost = new List<int>();
        for (int row = 0; row < set.Vectors.Length; row++)
        {
            index.Search(set.Vectors[row], keys, similarities);
            if (keys[0] != Clustered.KeyOf(row)) lost.Add(row);
        }
        Assert.True(lost.Count == 0, $"{lost.Count} stored vectors do not find themselves first (rows {string.Join(", ", lost.Take(10))})");
    }

    [Fact]
    public void Bulk_add_replaces_existing_keys_and_grows_a_loaded_index()
    {
        var options = new HnswOptions();
        using (var first = HnswIndex.Create(_set.Dimensions, options))
        {
            first.AddRange(_set.Keys[..1000], _set.Flat.AsSpan(0, 1000 * _set.Dimensions));
            first.Save(FilePath());
        }
        using var index = HnswIndex.Load(FilePath(), _set.Dimensions, options);

        // Keys 500..999 get new vectors (those of rows 5500..5999); the keys of rows 1000..5999 are new.
        ulong[] keys = [.. Enumerable.Range(500, 500).Select(Clustered.KeyOf), .. _set.Keys[1000..6000]];
        float[] vectors = [.. _set.Vectors[5500..6000].SelectMany(v => v), .. _set.Vectors[1000..6000].SelectMany(v => v)];
        index.AddRange(keys, vectors);

        Assert.Equal(6000, index.Count);
        var found = new ulong[1];
        var similarity = new float[1];
        index.Search(_set.Vectors[5700], found, similarity);
        Assert.Contains(found[0], new[] { Clustered.KeyOf(700), Clustered.KeyOf(5700) });
        index.SearchExact(_set.Vectors[5700], found, similarity, new KeySet([Clustered.KeyOf(700)]));
        Assert.Equal(1f, similarity[0], 1e-5f);
    }

    [Fact]
    public void A_bad_batch_is_refused_whole_with_what_was_wrong()
    {
        using var index = HnswIndex.Create(_set.Dimensions, new HnswOptions());
        var keys = _set.Keys[..10];
        var vectors = _set.Flat.AsSpan(0, 10 * _set.Dimensions).ToArray();

        var error = Assert.Throws<ArgumentException>(() => index.AddRange(keys, vectors.AsSpan(1)));
        Assert.Contains($"10 keys of {_set.Dimensions} dimensions", error.Message);

        var twice = (ulong[])keys.Clone();
        twice[7] = twice[2];
        error = Assert.Throws<ArgumentException>(() => index.AddRange(twice, vectors));
        Assert.Contains($"key {twice[2]} is given twice, at rows 2 and 7", error.Message);

        var poisoned = (float[])vectors.Clone();
        poisoned[6 * _set.Dimensions + 5] = float.NaN;
        error = Assert.Throws<ArgumentException>(() => index.AddRange(keys, poisoned));
        Assert.Contains($"row 6 (key {keys[6]})", error.Message);
        Assert.Contains("index 5", error.Message);

        var reserved = (ulong[])keys.Clone();
        reserved[3] = ulong.MaxValue;
        Assert.Throws<ArgumentOutOfRangeException>(() => index.AddRange(reserved, vectors));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Add(ulong.MaxValue, _set.Vectors[0]));

        Assert.Equal(0, index.Count);
    }

    [Fact]
    public void Invalid_quantisation_and_thread_counts_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => HnswIndex.Create(8, new HnswOptions { Threads = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => HnswIndex.Create(8, new HnswOptions { Quantization = (Quantization)9 }));
    }
}
