using MedSearch.Engine;
using MedSearch.Storage.Records;
using Xunit;

namespace MedSearch.Engine.Tests;

public sealed class VolumePoolingTests
{
    [Theory]
    [InlineData(64, 16)]
    [InlineData(20, 8)]
    [InlineData(5, 16)]
    [InlineData(7, 1)]
    [InlineData(2, 2)]
    public void Samples_are_evenly_spread_ordered_distinct_and_include_both_ends(int count, int wanted)
    {
        var sample = VolumePooling.Sample(count, wanted);
        Assert.Equal(Math.Min(count, wanted), sample.Length);
        Assert.Equal(sample.Distinct().Order(), sample);
        Assert.All(sample, i => Assert.InRange(i, 0, count - 1));
        if (wanted >= 2 && count >= 2)
        {
            Assert.Equal(0, sample[0]);
            Assert.Equal(count - 1, sample[^1]);
            var gaps = sample.Zip(sample.Skip(1), (a, b) => b - a).ToList();
            Assert.True(gaps.Max() - gaps.Min() <= 1, string.Join(",", sample));
        }
        if (wanted == 1) Assert.Equal(count / 2, Assert.Single(sample));
    }

    private static readonly float[][] Slices = [[1, 0, 4], [3, 0, 0], [2, 6, 1], [0, 2, 3]];

    private static float[] Normalised(params float[] v)
    {
        var norm = MathF.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }

    [Fact]
    public void Pooling_matches_hand_computed_vectors()
    {
        AssertClose(Normalised(1.5f, 2f, 2f), VolumePooling.Pool(Slices, Pooling.Mean));
        AssertClose(Normalised(3, 6, 4), VolumePooling.Pool(Slices, Pooling.Max));
        // Per dimension, even count: the mean of the two middle values.
        AssertClose(Normalised(1.5f, 1f, 2f), VolumePooling.Pool(Slices, Pooling.Median));
        var meanMax = VolumePooling.Pool(Slices, Pooling.MeanMax);
        Assert.Equal(6, meanMax.Length);
        AssertClose([.. Normalised(1.5f, 2f, 2f).Select(x => x / MathF.Sqrt(2)), .. Normalised(3, 6, 4).Select(x => x / MathF.Sqrt(2))], meanMax);
    }

    [Fact]
    public void Pooling_refuses_nothing_and_ragged_slices()
    {
        Assert.Throws<ArgumentException>(() => VolumePooling.Pool([], Pooling.Mean));
        Assert.Throws<ArgumentException>(() => VolumePooling.Pool([[1, 2], [1, 2, 3]], Pooling.Mean));
        Assert.Throws<ArgumentException>(() => VolumePooling.Pool([[0, 0], [0, 0]], Pooling.Max));
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 5);
    }

    private static CaseRecord Slice(string key, string? position, string? orientation, string? instance)
    {
        var record = new CaseRecord { Key = key };
        if (position is not null) record.Metadata["image_position"] = position;
        if (orientation is not null) record.Metadata["image_orientation"] = orientation;
        if (instance is not null) record.Metadata["instance_number"] = instance;
        return record;
    }

    [Fact]
    public void Slices_order_along_the_normal_of_an_oblique_plane_not_by_instance_number_or_name()
    {
        // Rows along x, columns along (0, cos 30°, -sin 30°): the normal is (0, sin 30°, cos 30°).
        const string orientation = @"1\0\0\0\0.8660254\-0.5";
        var slices = new[]
        {
            Slice("c", @"0\1\1.7320508", orientation, "1"),   // 2 mm along the normal
            Slice("a", @"0\1.5\2.5980762", orientation, "2"), // 3 mm
            Slice("b", @"0\0.5\0.8660254", orientation, "3"), // 1 mm
        };
        Assert.Equal(["b", "c", "a"], slices.Select(SlicePlace.Of).Order().Select(p => p.Key));
    }

    [Fact]
    public void Without_positions_slices_order_by_instance_number_then_frame_then_key()
    {
        var slices = new[]
        {
            Slice("sop:2", null, null, "10"), Slice("sop:1", null, null, "9"),
            Slice("sop:3#frame=2", null, null, "11"), Slice("sop:3#frame=1", null, null, "11"), Slice("sop:0", null, null, null),
        };
        Assert.Equal(["sop:1", "sop:2", "sop:3#frame=1", "sop:3#frame=2", "sop:0"],
            slices.Select(s => SlicePlace.Of(s).WithoutPosition()).Order().Select(p => p.Key));
    }
}
