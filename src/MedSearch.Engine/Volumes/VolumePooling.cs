using System.Numerics.Tensors;

namespace MedSearch.Engine;

/// <summary>Slice sampling and pooling: how a volume's slice embeddings become one vector.</summary>
public static class VolumePooling
{
    /// <summary>
    /// <paramref name="wanted"/> indices spread evenly over <paramref name="count"/> ordered slices, first and
    /// last included; every index when there are no more slices than wanted.
    /// </summary>
    public static int[] Sample(int count, int wanted)
    {
        if (count <= wanted) return Enumerable.Range(0, count).ToArray();
        if (wanted == 1) return [count / 2];
        return Enumerable.Range(0, wanted).Select(j => (int)Math.Round(j * (count - 1) / (double)(wanted - 1), MidpointRounding.AwayFromZero)).ToArray();
    }

    /// <summary>The pooled, L2-normalised vector of <paramref name="slices"/> (each of the same length).</summary>
    /// <exception cref="ArgumentException">No slices, or slices of different lengths.</exception>
    public static float[] Pool(IReadOnlyList<float[]> slices, Pooling pooling)
    {
        if (slices.Count == 0) throw new ArgumentException("a volume needs at least one slice to pool", nameof(slices));
        int d = slices[0].Length;
        if (slices.Any(s => s.Length != d)) throw new ArgumentException("slice embeddings differ in length", nameof(slices));
        float[] pooled;
        switch (pooling)
        {
            case Pooling.Mean:
                pooled = Mean(slices, d);
                break;
            case Pooling.Max:
                pooled = Max(slices, d);
                break;
            case Pooling.Median:
                pooled = new float[d];
                var column = new float[slices.Count];
                for (int i = 0; i < d; i++)
                {
                    for (int s = 0; s < slices.Count; s++) column[s] = slices[s][i];
                    Array.Sort(column);
                    int mid = column.Length / 2;
                    pooled[i] = column.Length % 2 == 1 ? column[mid] : (column[mid - 1] + column[mid]) / 2;
                }
                break;
            default:
                // Each half normalised first, so that neither dominates the cosine.
                pooled = [.. Normalised(Mean(slices, d)), .. Normalised(Max(slices, d))];
                break;
        }
        return Normalised(pooled);
    }

    private static float[] Mean(IReadOnlyList<float[]> slices, int d)
    {
        var sum = new float[d];
        foreach (var s in slices) TensorPrimitives.Add(sum, s, sum);
        TensorPrimitives.Divide(sum, slices.Count, sum);
        return sum;
    }

    private static float[] Max(IReadOnlyList<float[]> slices, int d)
    {
        var max = slices[0].ToArray();
        foreach (var s in slices.Skip(1)) TensorPrimitives.Max(max, s, max);
        return max;
    }

    private static float[] Normalised(float[] v)
    {
        float norm = TensorPrimitives.Norm(v);
        if (!(norm > 0)) throw new ArgumentException("the pooled slice embeddings are all zero: no direction to compare");
        TensorPrimitives.Divide(v, norm, v);
        return v;
    }
}
