using MedSearch.Index;

namespace MedSearch.Bench.Index;

/// <summary>The index benchmark's vectors and queries (<see cref="ClusteredVectors"/>), as saved for the hnswlib side.</summary>
internal sealed class Dataset
{
    public const int K = 10;

    public required float[] Vectors { get; init; }
    public required float[] Queries { get; init; }
    public required int Dimensions { get; init; }
    public int Count => Vectors.Length / Dimensions;
    public int QueryCount => Queries.Length / Dimensions;

    public ReadOnlySpan<float> Vector(int row) => Vectors.AsSpan(row * Dimensions, Dimensions);
    public ReadOnlySpan<float> Query(int row) => Queries.AsSpan(row * Dimensions, Dimensions);

    public static Dataset Generate(int count, int queries, int dimensions, int seed)
    {
        var source = new ClusteredVectors(new Random(seed), dimensions);
        return new Dataset { Vectors = source.Draw(count), Queries = source.Draw(queries), Dimensions = dimensions };
    }

    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        Npy.Write<float>(Path.Combine(directory, "vectors.npy"), Vectors, Count, Dimensions);
        Npy.Write<float>(Path.Combine(directory, "queries.npy"), Queries, QueryCount, Dimensions);
    }

    public static Dataset Load(string directory)
    {
        var vectors = Npy.Read<float>(Path.Combine(directory, "vectors.npy"), out _, out int dimensions);
        var queries = Npy.Read<float>(Path.Combine(directory, "queries.npy"), out _, out _);
        return new Dataset { Vectors = vectors, Queries = queries, Dimensions = dimensions };
    }

    /// <summary>
    /// Exact top-<see cref="K"/> rows of each query among <paramref name="rows"/> (all rows when null), by USearch's
    /// brute-force kernel: independent of the index's own exact search.
    /// </summary>
    public long[] GroundTruth(int[]? rows = null)
    {
        float[] subset = Vectors;
        if (rows is not null)
        {
            subset = new float[rows.Length * Dimensions];
            for (int i = 0; i < rows.Length; i++) Vector(rows[i]).CopyTo(subset.AsSpan(i * Dimensions));
        }
        int k = Math.Min(K, subset.Length / Dimensions);
        var found = new long[QueryCount * k];
        var similarities = new float[QueryCount * k];
        // Chunks of queries on both cores: the C wrapper runs each call on one thread.
        Parallel.For(0, (QueryCount + 99) / 100, chunk =>
        {
            int first = chunk * 100, n = Math.Min(100, QueryCount - first);
            UsearchNative.ExactSearch(subset, Queries.AsSpan(first * Dimensions, n * Dimensions), Dimensions, k,
                found.AsSpan(first * k, n * k), similarities.AsSpan(first * k, n * k));
        });
        if (rows is not null)
            for (int i = 0; i < found.Length; i++) found[i] = rows[found[i]];
        if (k == K) return found;
        // Fewer rows than K: pad with -1, which no key matches.
        var padded = Enumerable.Repeat(-1L, QueryCount * K).ToArray();
        for (int q = 0; q < QueryCount; q++) Array.Copy(found, q * k, padded, q * K, k);
        return padded;
    }
}
