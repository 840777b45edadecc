namespace MedSearch.Bench;

/// <summary>
/// Unit vectors around cluster centres, as image embeddings are (scans of one body part and modality crowd together),
/// from a fixed seed, so that every run and every benchmark sees the same bytes: the index benchmark and its hnswlib
/// side, and the 100k-case collection the load and collection benchmarks search.
/// </summary>
/// <remarks>
/// 1000 centres uniform on the sphere, cluster sizes log-normal (a few big ones, many small). A member is its centre
/// plus variation along 16 directions of its own cluster (norm ~0.8) plus isotropic noise (norm ~0.3), back on the
/// sphere: like real embeddings, the data has a low intrinsic dimension. Isotropic noise in all 512 dimensions would
/// not have it: that is the worst case of any graph index, and unlike images (a cluster's members would all be
/// about equally far from each other, so a "nearest" ten would be a draw among near-ties).
/// </remarks>
internal sealed class ClusteredVectors
{
    private const int Clusters = 1000;
    private const int LocalDimensions = 16;
    private const double LocalSpread = 0.8;
    private const double NoiseSpread = 0.3;
    private const double SizeSigma = 1.0;

    private readonly Random _random;
    private readonly int _dimensions;
    private readonly float[] _centres;
    private readonly float[] _bases;
    private readonly double[] _cumulative;

    public ClusteredVectors(Random random, int dimensions)
    {
        _random = random;
        _dimensions = dimensions;
        _centres = new float[Clusters * dimensions];
        for (int c = 0; c < Clusters; c++) Direction(_centres.AsSpan(c * dimensions, dimensions), 1.0);
        _bases = new float[Clusters * LocalDimensions * dimensions];
        for (int b = 0; b < Clusters * LocalDimensions; b++) Direction(_bases.AsSpan(b * dimensions, dimensions), 1.0);
        var weights = new double[Clusters];
        for (int c = 0; c < Clusters; c++) weights[c] = Math.Exp(SizeSigma * Gaussian());
        _cumulative = new double[Clusters];
        double total = 0;
        for (int c = 0; c < Clusters; c++) _cumulative[c] = total += weights[c];
    }

    /// <summary><paramref name="count"/> vectors, one after another.</summary>
    public float[] Draw(int count)
    {
        var result = new float[count * _dimensions];
        for (int i = 0; i < count; i++) Draw(result.AsSpan(i * _dimensions, _dimensions));
        return result;
    }

    /// <summary><paramref name="count"/> vectors, one array each.</summary>
    public float[][] DrawEach(int count)
    {
        var result = new float[count][];
        for (int i = 0; i < count; i++) Draw(result[i] = new float[_dimensions]);
        return result;
    }

    private void Draw(Span<float> row)
    {
        int c = Array.BinarySearch(_cumulative, _random.NextDouble() * _cumulative[^1]);
        if (c < 0) c = ~c;
        c = Math.Min(c, Clusters - 1);
        Direction(row, NoiseSpread);
        var centre = _centres.AsSpan(c * _dimensions, _dimensions);
        for (int d = 0; d < _dimensions; d++) row[d] += centre[d];
        for (int j = 0; j < LocalDimensions; j++)
        {
            // Gaussian weights of variance 1/LocalDimensions give the local part a norm of about LocalSpread.
            float weight = (float)(LocalSpread * Gaussian() / Math.Sqrt(LocalDimensions));
            var direction = _bases.AsSpan((c * LocalDimensions + j) * _dimensions, _dimensions);
            for (int d = 0; d < _dimensions; d++) row[d] += weight * direction[d];
        }
        Normalise(row);
    }

    private void Direction(Span<float> into, double norm)
    {
        for (int d = 0; d < into.Length; d++) into[d] = (float)Gaussian();
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

    private double Gaussian()
        => Math.Sqrt(-2 * Math.Log(1 - _random.NextDouble())) * Math.Cos(2 * Math.PI * _random.NextDouble());
}
