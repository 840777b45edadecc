using Xunit;

namespace MedSearch.Index.Tests;

public sealed class FilteredSearchTests : IClassFixture<FilteredSearchTests.Data>
{
    /// <summary>One clustered data set and its index, shared by the tests (building is the slow part).</summary>
    public sealed class Data : IDisposable
    {
        public Clustered Set { get; } = new(8000, 48, seed: 31);
        public HnswIndex Index { get; }

        public Data() => Index = Set.Build(new HnswOptions());

        public void Dispose() => Index.Dispose();
    }

    private readonly Clustered _set;
    private readonly HnswIndex _index;

    public FilteredSearchTests(Data data)
    {
        _set = data.Set;
        _index = data.Index;
    }

    /// <summary>A pseudo-random share of the keys, unrelated to where their vectors lie.</summary>
    private static Func<ulong, bool> Share(double fraction) => key => (key * 0x9E3779B97F4A7C15UL >> 11) / (double)(1UL << 53) < fraction;

    public static TheoryData<double> Fractions => new() { 0.5, 0.2, 0.1, 0.01, 0.001 };

    [Theory]
    [MemberData(nameof(Fractions))]
    public void A_key_set_filter_returns_only_its_keys_with_recall_99(double fraction)
    {
        var accepted = Share(fraction);
        var set = new KeySet(_set.Keys.Where(accepted));
        Assert.InRange(set.Count, fraction * _set.Vectors.Length * 0.5, fraction * _set.Vectors.Length * 1.5 + 3);

        AssertOnlyAccepted(set, accepted);
        double recall = _set.Recall(_index, accepted, set);
        Assert.True(recall >= 0.99, $"recall@10 with {fraction:P1} passing = {recall:F4}");
    }

    [Theory]
    [MemberData(nameof(Fractions))]
    public void A_predicate_filter_returns_only_accepted_keys_with_recall_99(double fraction)
    {
        var accepted = Share(fraction);
        var predicate = new Predicate(accepted);

        AssertOnlyAccepted(predicate, accepted);
        double recall = _set.Recall(_index, accepted, predicate);
        Assert.True(recall >= 0.99, $"recall@10 with {fraction:P1} passing = {recall:F4}");
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.2)]
    [InlineData(0.05)]
    public void The_graph_walk_alone_never_returns_a_rejected_key(double fraction)
    {
        // Forced past the planner, which would score the 5 % filter exactly: the graph path must be safe on its own.
        var accepted = Share(fraction);
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        foreach (var query in _set.Queries)
        {
            int found = _index.Search(query, keys, similarities, new Predicate(accepted), HnswIndex.Plan.Graph);
            Assert.True(found > 0);
            Assert.All(keys[..found], key => Assert.True(accepted(key), $"key {key} fails the filter"));
        }
    }

    [Fact]
    public void The_planner_scores_selective_filters_exactly_and_walks_the_graph_for_broad_ones()
    {
        var query = _set.Queries[0];
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];

        // Exact scoring calls a predicate once per indexed key (after the sample); a graph walk visits far fewer.
        var selective = new Predicate(Share(HnswIndex.ExactSearchMaxPassingFraction / 4));
        _index.Search(query, keys, similarities, selective);
        Assert.True(selective.Calls >= _set.Vectors.Length, $"{selective.Calls} filter calls for a selective filter");

        var broad = new Predicate(Share(0.5));
        _index.Search(query, keys, similarities, broad);
        Assert.True(broad.Calls < _set.Vectors.Length / 2, $"{broad.Calls} filter calls for a broad filter");
    }

    [Fact]
    public void Filtered_hits_are_sorted_and_carry_true_cosine_similarities()
    {
        var accepted = Share(0.3);
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        foreach (var filter in new IKeyFilter[] { new Predicate(accepted), new KeySet(_set.Keys.Where(Share(0.03))) })
        {
            foreach (var query in _set.Queries.Take(20))
            {
                int found = _index.Search(query, keys, similarities, filter);
                for (int i = 0; i < found; i++)
                {
                    Assert.Equal(Clustered.Dot(_set.Vectors[Clustered.RowOf(keys[i])], query), similarities[i], 1e-4f);
                    if (i > 0) Assert.True(similarities[i - 1] >= similarities[i]);
                }
            }
        }
    }

    [Fact]
    public void A_filter_that_rejects_everything_finds_nothing()
    {
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        Assert.Equal(0, _index.Search(_set.Queries[0], keys, similarities, new Predicate(_ => false)));
        Assert.Equal(0, _index.Search(_set.Queries[0], keys, similarities, new KeySet([])));
        Assert.Equal(0, _index.Search(_set.Queries[0], keys, similarities, new KeySet([12345, 67890])));
        Assert.Equal(0, _index.Search(_set.Queries[0], keys, similarities, new Predicate(_ => false), HnswIndex.Plan.Graph));
    }

    [Fact]
    public void An_exception_in_the_filter_fails_the_search_and_leaves_the_index_usable()
    {
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        var failing = new Predicate(key => key % 7 == 0 ? throw new InvalidOperationException($"metadata of {key} is unavailable") : true);

        // Thrown inside USearch's graph walk, which cannot unwind managed exceptions: it must surface here intact.
        var error = Assert.Throws<InvalidOperationException>(() => _index.Search(_set.Queries[0], keys, similarities, failing, HnswIndex.Plan.Graph));
        Assert.Contains("metadata of", error.Message);
        Assert.Throws<InvalidOperationException>(() => _index.Search(_set.Queries[0], keys, similarities, failing, HnswIndex.Plan.Exact));

        Assert.Equal(Clustered.K, _index.Search(_set.Queries[0], keys, similarities, new Predicate(_ => true), HnswIndex.Plan.Graph));
    }

    private void AssertOnlyAccepted(IKeyFilter filter, Func<ulong, bool> accepted)
    {
        var keys = new ulong[Clustered.K];
        var similarities = new float[Clustered.K];
        foreach (var query in _set.Queries)
        {
            int found = _index.Search(query, keys, similarities, filter);
            Assert.All(keys[..found], key => Assert.True(accepted(key), $"key {key} fails the filter"));
        }
    }
}
