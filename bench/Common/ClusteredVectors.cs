namespace MedSearch.Bench;

/// <summary>
/// Clustered unit vectors like image embeddings: 64 random centres, each vector a centre plus uniform noise. Shared by
/// the benchmarks that build a 100k-case collection (bench/Load, bench/Index `collection`): the same seed gives the
/// same vectors, so either reuses a collection the other stored.
/// </summary>
internal static class ClusteredVectors
{
    public static float[][] Generate(Random random, int cases, int dims)
    {
        var centres = Enumerable.Range(0, 64).Select(_ => Unit(Enumerable.Range(0, dims).Select(_ => (float)random.NextDouble() - 0.5f).ToArray())).ToArray();
        var vectors = new float[cases][];
        for (int i = 0; i < cases; i++)
        {
            var centre = centres[random.Next(centres.Length)];
            vectors[i] = Unit(centre.Select(v => v + 0.3f * ((float)random.NextDouble() - 0.5f)).ToArray());
        }
        return vectors;
    }

    private static float[] Unit(float[] v)
    {
        float norm = MathF.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }
}
