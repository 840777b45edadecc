namespace MedSearch.Index.Tests;

/// <summary>
/// Clustered unit vectors like image embeddings (centres, variation along a few directions of each cluster, a
/// little isotropic noise), a brute-force oracle over them, and recall against it.
/// </summary>
public sealed class Clustered
{
    public const int K = 10;

    public Clustered(int count, int dimensions, int seed, int clusters = 50, int queries = 100)
    {
        Dimensions = dimensions;
        var random = new Random(seed);
        var centres = Enumerable.Range(0, clusters).Select(_ => Direction(random, dimensions, 1)).ToArray();
        var bases = Enumerable.Range(0, clusters).Select(_ => Enumerable.Range(0, 4).Select(_ => Direction(random, dimensions, 1)).ToArray()).ToArray();
        float[] Draw()
        {
            int c = random.Next(clusters);
            var v = Direction(random, dimensions, 0.3);
            for (int d = 0; d < dimensions; d++) v[d] += centres[c][d];
            foreach (var direction in bases[c])
            {
                float weight = (float)(0.4 * Gaussian(random));
                for (int d = 0; d < dimensions; d++) v[d] += weight * direction[d];
            }
            return Normalise(v);
        }
        Vectors = Enumerable.Range(0, count).Select(_ => Draw()).ToArray();
        Queries = Enumerable.Range(0, queries).Select(_ => Draw()).ToArray();
    }

    public int Dimensions { get; }
    public float[][] Vectors { get; }
    public float[][] Queries { get; }

    // Keys far from 0..n so that an index/key mix-up cannot pass by accident.
    public static ulong KeyOf(int row) => 1_000_003UL * (ulong)(row + 1);

    public static int RowOf(ulong key) => (int)(key / 1_000_003UL) - 1;

    public ulong[] Keys => Enumerable.Range(0, Vectors.Length).Select(KeyOf).ToArray();

    /// <summary>All vectors, row after row, as <see cref="IVectorIndex.AddRange"/> takes them.</summary>
    public float[] Flat => Vectors.SelectMany(v => v).ToArray();

    public HnswIndex Build(HnswOptions options)
    {
        var index = HnswIndex.Create(Dimensions, options);
        index.AddRange(Keys, Flat);
        return index;
    }

    /// <summary>The exact top-k keys of <paramref name="query"/> among rows <paramref name="accepted"/> allows, by a plain loop.</summary>
    public ulong[] BruteForce(float[] query, Func<ulong, bool>? accepted = null, int k = K)
        => Enumerable.Range(0, Vectors.Length)
            .Where(row => accepted is null || accepted(KeyOf(row)))
            .OrderByDescending(row => Dot(Vectors[row], query))
            .Take(k)
            .Select(KeyOf)
            .ToArray();

    public double Recall(IVectorIndex index, Func<ulong, bool>? accepted = null, IKeyFilter? filter = null)
    {
        int hits = 0, expected = 0;
        var keys = new ulong[K];
        var similarities = new float[K];
        foreach (var query in Queries)
        {
            var truth = BruteForce(query, accepted);
            int found = index.Search(query, keys, similarities, filter);
            hits += keys[..found].Count(truth.Contains);
            expected += truth.Length;
        }
        return hits / (double)expected;
    }

    public static float Dot(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return (float)sum;
    }

    private static float[] Direction(Random random, int dimensions, double norm)
    {
        var v = new float[dimensions];
        for (int d = 0; d < dimensions; d++) v[d] = (float)Gaussian(random);
        Normalise(v);
        for (int d = 0; d < dimensions; d++) v[d] *= (float)norm;
        return v;
    }

    private static float[] Normalise(float[] v)
    {
        float norm = (float)Math.Sqrt(Dot(v, v));
        for (int d = 0; d < v.Length; d++) v[d] /= norm;
        return v;
    }

    private static double Gaussian(Random random)
        => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
