using Xunit;

namespace MedSearch.Index.Tests;

/// <summary>
/// A candidate filter is scored through its candidates only: the same hits as the predicate alone, without a call
/// per indexed key, whatever the candidate list holds (repeats, keys not indexed, keys the filter refuses).
/// </summary>
public sealed class CandidateFilterTests : IClassFixture<CandidateFilterTests.Data>
{
    public sealed class Data : IDisposable
    {
        public Clustered Set { get; } = new(6000, 48, seed: 71, queries: 30);
        public HnswIndex Index { get; }

        public Data() => Index = Set.Build(new HnswOptions { Quantization = Quantization.I8 });

        public void Dispose() => Index.Dispose();
    }

    /// <summary>Candidates listed twice, plus keys never indexed; <c>understate</c> makes its count lag its list, as a writer adding between the two calls would.</summary>
    private sealed class Listed(ulong[] candidates, Func<ulong, bool> accepts, int understate = 0) : ICandidateFilter
    {
        public int Calls;

        public int CandidateCount => Math.Max(0, candidates.Length - understate);

        public bool Accepts(ulong key)
        {
            Interlocked.Increment(ref Calls);
            return accepts(key);
        }

        public int CopyCandidates(Span<ulong> destination)
        {
            if (candidates.Length <= destination.Length) candidates.CopyTo(destination);
            return candidates.Length;
        }
    }

    private readonly Clustered _set;
    private readonly HnswIndex _index;

    public CandidateFilterTests(Data data)
    {
        _set = data.Set;
        _index = data.Index;
    }

    private static bool InShare(ulong key, double fraction) => (key * 0x9E3779B97F4A7C15UL >> 11) / (double)(1UL << 53) < fraction;

    /// <summary>Candidates: a share of the keys, each twice, and keys the index never had; the filter passes two thirds of them (or <paramref name="accepts"/>).</summary>
    private Listed Candidates(double fraction, int understate = 0, Func<ulong, bool>? accepts = null)
    {
        var keys = _set.Keys.Where(key => InShare(key, fraction)).ToArray();
        ulong[] listed = [.. keys, .. keys.Reverse(), .. Enumerable.Range(1, 50).Select(i => (ulong)i)];
        var passes = accepts ?? (key => key % 3 != 0);
        // As the contract asks, it refuses every key it did not list.
        return new Listed(listed, key => InShare(key, fraction) && passes(key), understate);
    }

    [Theory]
    // Listed twice, 4 % of the keys make 8 % of the index in candidates: under the threshold.
    [InlineData(0.04, 0)]
    [InlineData(0.01, 0)]
    [InlineData(0.001, 0)]
    [InlineData(0.04, 200)]
    [InlineData(0.01, 20)]
    public void A_selective_candidate_filter_is_scored_exactly_over_its_candidates_alone(double fraction, int understate)
    {
        foreach (int k in new[] { 1, 10, 100 })
        {
            var keys = new ulong[k];
            var similarities = new float[k];
            var oldKeys = new ulong[k];
            var oldSimilarities = new float[k];
            foreach (var query in _set.Queries)
            {
                var filter = Candidates(fraction, understate);
                var predicate = new Predicate(key => InShare(key, fraction) && key % 3 != 0);
                int found = _index.Search(query, keys, similarities, filter);
                // No sampling and no call per indexed key: one call per listed candidate that is indexed.
                Assert.InRange(filter.Calls, 0, filter.CandidateCount + understate - 50);
                int old = _index.Search(query, oldKeys, oldSimilarities, predicate, HnswIndex.Plan.Exact);
                Assert.Equal(oldKeys[..old], keys[..found]);
                Assert.Equal(oldSimilarities[..old], similarities[..found]);
                var expected = _set.BruteForce(query, key => InShare(key, fraction) && key % 3 != 0, k);
                Assert.Equal(expected.Length, found);
                Assert.True(keys[..found].Intersect(expected).Count() >= found - 1, $"{fraction:P1}, k {k}: hits differ from brute force");
                Assert.Equal(found, keys[..found].Distinct().Count());
            }
        }
    }

    [Fact]
    public void A_candidate_list_its_filter_accepts_whole_is_asked_only_about_contenders()
    {
        // A posting list with nothing else to check: the filter is asked about the best estimates and those whose
        // bound reaches the top, not about each candidate (listed twice, 4 % of the keys make 8 % of the index: exact).
        var keys = new ulong[10];
        var similarities = new float[10];
        foreach (var query in _set.Queries)
        {
            var filter = Candidates(0.04, accepts: _ => true);
            int found = _index.Search(query, keys, similarities, filter);
            // Against ~240 candidates: asking each would be 240 calls.
            Assert.InRange(filter.Calls, keys.Length, 60);
            var expected = _set.BruteForce(query, key => InShare(key, 0.04), keys.Length);
            Assert.Equal(expected.Length, found);
            Assert.True(keys[..found].Intersect(expected).Count() >= found - 1, "hits differ from brute force");
        }
    }

    [Fact]
    public void Many_candidates_of_which_few_pass_are_still_scored_exactly_and_only_over_the_candidates()
    {
        // Half the keys are candidates, 2 % of those pass: the count alone says walk, the sample says exact.
        var filter = Candidates(0.5, accepts: key => InShare(key * 7, 0.02));
        var keys = new ulong[10];
        var similarities = new float[10];
        foreach (var query in _set.Queries.Take(10))
        {
            filter.Calls = 0;
            int found = _index.Search(query, keys, similarities, filter);
            Assert.InRange(filter.Calls, 1, 512 + filter.CandidateCount);
            var expected = _set.BruteForce(query, key => InShare(key, 0.5) && InShare(key * 7, 0.02));
            Assert.Equal(expected.Length, found);
            Assert.True(keys[..found].Intersect(expected).Count() >= found - 1);
        }
    }

    [Fact]
    public void A_broad_candidate_filter_walks_the_graph_and_returns_only_accepted_keys()
    {
        var filter = Candidates(0.6);
        var keys = new ulong[10];
        var similarities = new float[10];
        foreach (var query in _set.Queries.Take(10))
        {
            int found = _index.Search(query, keys, similarities, filter);
            Assert.Equal(10, found);
            Assert.All(keys, key => Assert.True(InShare(key, 0.6) && key % 3 != 0));
        }
    }

    [Fact]
    public void No_candidates_means_no_hits()
    {
        var filter = new Listed([], _ => true);
        Assert.Equal(0, _index.Search(_set.Queries[0], new ulong[10], new float[10], filter));
        Assert.Equal(0, _index.SearchExact(_set.Queries[0], new ulong[10], new float[10], filter));
        Assert.Equal(0, filter.Calls);
    }
}
