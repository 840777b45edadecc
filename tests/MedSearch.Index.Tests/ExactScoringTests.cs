using Xunit;

namespace MedSearch.Index.Tests;

/// <summary>
/// Exact scoring reads i8 codes first and f32 vectors only where the codes' error bound leaves a doubt: the result
/// must still be the one scoring every candidate in f32 gives.
/// </summary>
public sealed class ExactScoringTests
{
    private static readonly int[] ResultSizes = [1, 10, 100];

    [Theory]
    [InlineData(Quantization.F32)]
    [InlineData(Quantization.I8)]
    public void Exact_scoring_equals_brute_force_under_every_kind_of_filter_after_removes_and_updates(Quantization quantization)
    {
        // 96 dimensions: codes are padded to 128, so the padding must not count.
        var set = new Clustered(3000, 96, seed: 53, queries: 30);
        using var index = set.Build(new HnswOptions { Quantization = quantization });
        var current = Enumerable.Range(0, set.Vectors.Length).ToDictionary(Clustered.KeyOf, row => set.Vectors[row]);
        var random = new Random(5);
        // Removals move the last slot (and its code) into the hole; updates re-encode a slot.
        foreach (int row in Enumerable.Range(0, 300).Select(_ => random.Next(set.Vectors.Length)).Distinct())
        {
            ulong key = Clustered.KeyOf(row);
            if (row % 2 == 0)
            {
                index.Remove(key);
                current.Remove(key);
            }
            else
            {
                var moved = set.Vectors[random.Next(set.Vectors.Length)].Select(x => x + 0.05f * (float)random.NextDouble()).ToArray();
                index.Add(key, moved);
                float norm = (float)Math.Sqrt(Clustered.Dot(moved, moved));
                current[key] = moved.Select(x => x / norm).ToArray();
            }
        }

        Func<ulong, bool> share = key => key % 7 < 2;
        // Half of the set's keys were never indexed or are removed: they must be skipped, not scored.
        var keySet = new KeySet(set.Keys.Where(share).Concat(Enumerable.Range(1, 200).Select(i => (ulong)i)));
        var filters = new (IKeyFilter? Filter, Func<ulong, bool>? Accepts)[]
        {
            (null, null),
            (keySet, keySet.Accepts),
            (new Predicate(share), share),
        };
        foreach (int k in ResultSizes)
        {
            var keys = new ulong[k];
            var similarities = new float[k];
            foreach (var (filter, accepts) in filters)
            {
                foreach (var query in set.Queries)
                {
                    var expected = current
                        .Where(entry => accepts is null || accepts(entry.Key))
                        .Select(entry => (entry.Key, Similarity: Clustered.Dot(entry.Value, query)))
                        .OrderByDescending(hit => hit.Similarity)
                        .Take(k)
                        .ToArray();
                    int found = index.Search(query, keys, similarities, filter, HnswIndex.Plan.Exact);
                    Assert.Equal(expected.Length, found);
                    for (int i = 0; i < found; i++)
                    {
                        Assert.Equal(expected[i].Similarity, similarities[i], 1e-5f);
                        Assert.Equal(Clustered.Dot(current[keys[i]], query), similarities[i], 1e-5f);
                    }
                    // Near-ties may swap places between float summation orders, nothing more.
                    Assert.True(keys[..found].Intersect(expected.Select(hit => hit.Key)).Count() >= found - 1,
                        $"k {k}: {found} hits, {keys[..found].Intersect(expected.Select(hit => hit.Key)).Count()} of them in the brute-force top");
                }
            }
        }
    }

    [Theory]
    [InlineData(Quantization.F32)]
    [InlineData(Quantization.I8)]
    public void Exact_scoring_stays_exact_where_the_codes_cannot_tell_the_candidates_apart(Quantization quantization)
    {
        // Near-duplicates: every similarity lies within the codes' error of every other, so most candidates must
        // go to the f32 pass; the ones the bound rules out must really be out.
        const int count = 2000, dimensions = 64;
        var random = new Random(11);
        var centre = Unit(Enumerable.Range(0, dimensions).Select(_ => (float)random.NextDouble() - 0.5f).ToArray());
        var vectors = Enumerable.Range(0, count)
            .Select(_ => Unit(centre.Select(x => x + 0.002f * ((float)random.NextDouble() - 0.5f)).ToArray()))
            .ToArray();
        using var index = HnswIndex.Create(dimensions, new HnswOptions { Quantization = quantization });
        index.AddRange(Enumerable.Range(0, count).Select(i => (ulong)i + 1).ToArray(), vectors.SelectMany(v => v).ToArray());

        var keys = new ulong[10];
        var similarities = new float[10];
        var filter = new KeySet(Enumerable.Range(1, count).Where(i => i % 3 != 0).Select(i => (ulong)i));
        for (int q = 0; q < 20; q++)
        {
            var query = Unit(centre.Select(x => x + 0.002f * ((float)random.NextDouble() - 0.5f)).ToArray());
            var expected = Enumerable.Range(0, count)
                .Where(i => filter.Accepts((ulong)i + 1))
                .Select(i => (Key: (ulong)i + 1, Similarity: Clustered.Dot(vectors[i], query)))
                .OrderByDescending(hit => hit.Similarity)
                .Take(10)
                .ToArray();
            Assert.Equal(10, index.Search(query, keys, similarities, filter, HnswIndex.Plan.Exact));
            for (int i = 0; i < 10; i++) Assert.Equal(expected[i].Similarity, similarities[i], 1e-6f);
        }
    }

    [Theory]
    [InlineData(5)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(512)]
    // Past 4,128 the query code is coarsened so that no sum overflows 32 bits.
    [InlineData(5000)]
    public void A_code_estimate_is_within_its_bound_of_the_exact_similarity(int dimensions)
    {
        var random = new Random(dimensions);
        var store = new VectorStore(dimensions);
        const int count = 300;
        var vectors = new float[count][];
        for (int i = 0; i < count; i++)
        {
            // Half of them all in one component: the codes' extremes.
            vectors[i] = i % 2 == 0
                ? Enumerable.Range(0, dimensions).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray()
                : Enumerable.Range(0, dimensions).Select(d => d == i % dimensions ? 1f : 0.001f).ToArray();
            float norm = (float)Math.Sqrt(Clustered.Dot(vectors[i], vectors[i]));
            store.Append((ulong)i, vectors[i], norm);
        }

        var code = new short[store.CodeLength];
        var slots = Enumerable.Range(0, count).ToArray();
        var estimates = new float[count];
        var upper = new float[count];
        for (int q = 0; q < 10; q++)
        {
            var query = Unit(q == 0
                ? Enumerable.Repeat(1f, dimensions).ToArray()
                : Enumerable.Range(0, dimensions).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray());
            var (scale, error) = store.EncodeQuery(query, code);
            store.Estimate(code, scale, error, slots, estimates, upper);
            for (int i = 0; i < count; i++)
            {
                float exact = System.Numerics.Tensors.TensorPrimitives.Dot(query, store.Vector(i));
                float bound = upper[i] - estimates[i];
                Assert.InRange(bound, 0f, 0.1f);
                Assert.InRange(exact, estimates[i] - bound, upper[i]);
            }
        }
    }

    private static float[] Unit(float[] v)
    {
        float norm = (float)Math.Sqrt(Clustered.Dot(v, v));
        return v.Select(x => x / norm).ToArray();
    }

    private sealed class Predicate(Func<ulong, bool> accepts) : IKeyFilter
    {
        public bool Accepts(ulong key) => accepts(key);
    }
}
