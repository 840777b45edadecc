using MedSearch.Index;

namespace MedSearch.Bench.Index;

/// <summary>
/// The benchmark's vectors: unit vectors around cluster centres, as image embeddings are (scans of one body part
/// and modality crowd together), made from a fixed seed so that every run and the hnswlib side see the same bytes.
/// </summary>
internal sealed class Dataset
{
    public const int K = 10;

    // 1000 centres uniform on the sphere, cluster sizes log-normal (a few big ones, many small). A member is its
    // centre plus variation along 16 directions of its own cluster (norm ~0.8) plus isotropic noise (norm ~0.3),
    // back on the sphere: like real embeddings, the data has a low intrinsic dimension, which isotropic noise in
    // all 512 dimensions would not have (that is the worst case of any graph index, and unlike images).
    private const int Clusters = 1000;
    private const int LocalDimensions = 16;
    private const double LocalSpread = 0.8;
    private const double NoiseSpread = 0.3;
    private const double SizeSigma = 1.0;

    public required float[] Vectors { get; init; }
    public required float[] Queries { get; init; }
    public required int Dimensions { get; init; }
    public int Count => Vectors.Length / Dimensions;
    public int QueryCount => Queries.Length / Dimensions;

    public ReadOnlySpan<float> Vector(int row) => Vectors.AsSpan(row * Dimensions, Dimensions);
    public ReadOnlySpan<float> Query(int row) => Queries.AsSpan(row * Dimensions, Dimensions);

    public static Dataset Generate(int count, int queries, int dimensions, int seed)
    {
        var random = new Random(seed);
        var centres = new float[Clusters * dimensions];
        for (int c = 0; c < Clusters; c++) Direction(random, centres.AsSpan(c * dimensions, dimensions), 1.0);
        var bases = new float[Clusters * LocalDimensions * dimensions];
        for (int b = 0; b < Clusters * LocalDimensions; b++) Direction(random, bases.AsSpan(b * dimensions, dimensions), 1.0);
        var weights = new double[Clusters];
        for (int c = 0; c < Clusters; c++) weights[c] = Math.Exp(SizeSigma * Gaussian(random));
        var cumulative = new double[Clusters];
        double total = 0;
        for (int c = 0; c < Clusters; c++) cumulative[c] = total += weights[c];

        float[] Draw(int n)
        {
            var result = new float[n * dimensions];
            for (int i = 0; i < n; i++)
            {
                int c = Array.BinarySearch(cumulative, random.NextDouble() * total);
                if (c < 0) c = ~c;
                c = Math.Min(c, Clusters - 1);
                var row = result.AsSpan(i * dimensions, dimensions);
                Direction(random, row, NoiseSpread);
                var centre = centres.AsSpan(c * dimensions, dimensions);
                for (int d = 0; d < dimensions; d++) row[d] += centre[d];
                for (int j = 0; j < LocalDimensions; j++)
                {
                    // Gaussian weights of variance 1/LocalDimensions give the local part a norm of about LocalSpread.
                    float weight = (float)(LocalSpread * Gaussian(random) / Math.Sqrt(LocalDimensions));
                    var direction = bases.AsSpan((c * LocalDimensions + j) * dimensions, dimensions);
                    for (int d = 0; d < dimensions; d++) row[d] += weight * direction[d];
                }
                Normalise(row);
            }
            return result;
        }

        return new Dataset { Vectors = Draw(count), Queries = Draw(queries), Dimensions = dimensions };
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

    private static void Direction(Random random, Span<float> into, double norm)
    {
        for (int d = 0; d < into.Length; d++) into[d] = (float)Gaussian(random);
        Normalise(into);
        for (int d = 0; d < into.Length; d++) into[d] *= (float)norm;
    }

    private static void Normalise(Span<float> v)
    {
        double sum = 0;
        foreach (float x in v) sum += x * x;
        float scale = (float)(1 / Math.Sqrt(sum));
        for (int d = 0; d < v.Length; d++) v[d] *= scale;
    }

    private static double Gaussian(Random random)
        => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
