using System.Globalization;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// Where a slice lies in its series: along the slice normal (the cross product of Image Orientation (Patient)'s
/// row and column directions) by Image Position (Patient), else by Instance Number, then by frame and key so the
/// order is total and the same on every run, whatever order files arrived in.
/// </summary>
internal readonly record struct SlicePlace(double Position, double InstanceNumber, int Frame, string Key) : IComparable<SlicePlace>
{
    public int CompareTo(SlicePlace other)
    {
        int c = UnknownLast(Position, other.Position);
        if (c == 0) c = UnknownLast(InstanceNumber, other.InstanceNumber);
        if (c == 0) c = Frame.CompareTo(other.Frame);
        return c != 0 ? c : string.CompareOrdinal(Key, other.Key);
    }

    private static int UnknownLast(double a, double b) =>
        double.IsNaN(a) ? (double.IsNaN(b) ? 0 : 1) : double.IsNaN(b) ? -1 : a.CompareTo(b);

    /// <remarks>
    /// A slice without a position sorts by Instance Number alone (NaN positions compare equal only if all lack
    /// one): mixing the two would interleave meaningless values, so a series uses positions only when every
    /// slice has one — <see cref="VolumeCatalog"/> checks that and drops positions otherwise.
    /// </remarks>
    public static SlicePlace Of(CaseRecord record)
    {
        var c = CultureInfo.InvariantCulture;
        var position = record.Metadata.TryGetValue("image_position", out var p) ? Numbers(p, 3) : null;
        var orientation = record.Metadata.TryGetValue("image_orientation", out var o) ? Numbers(o, 6) : null;
        double instance = record.Metadata.TryGetValue("instance_number", out var n) && double.TryParse(n, NumberStyles.Float, c, out var v) ? v : double.NaN;
        int frame = record.Key.LastIndexOf("#frame=", StringComparison.Ordinal) is var at and >= 0
            && int.TryParse(record.Key.AsSpan(at + 7), NumberStyles.None, c, out var f) ? f : 0;
        return Of(position, orientation, instance, frame, record.Key);

        double[]? Numbers(string text, int count)
        {
            var parts = text.Split('\\');
            if (parts.Length != count) return null;
            var values = new double[count];
            for (int i = 0; i < count; i++)
                if (!double.TryParse(parts[i], NumberStyles.Float, c, out values[i])) return null;
            return values;
        }
    }

    /// <summary>The place of a slice from its header values; a missing, non-finite or degenerate geometry gives no position.</summary>
    public static SlicePlace Of(IReadOnlyList<double>? position, IReadOnlyList<double>? orientation, double instanceNumber, int frame, string key)
    {
        double along = double.NaN;
        if (position is { Count: 3 } at && orientation is { Count: 6 } d && at.Concat(d).All(double.IsFinite))
        {
            // Normal = row direction × column direction; rows and columns at right angles give a unit normal.
            double nx = d[1] * d[5] - d[2] * d[4], ny = d[2] * d[3] - d[0] * d[5], nz = d[0] * d[4] - d[1] * d[3];
            double length = Math.Sqrt(nx * nx + ny * ny + nz * nz);
            // Zero or parallel directions have no normal: every slice would land at 0 and look like a duplicate.
            if (length > 0.5) along = (at[0] * nx + at[1] * ny + at[2] * nz) / length;
        }
        return new SlicePlace(along, instanceNumber, frame, key);
    }

    public SlicePlace WithoutPosition() => this with { Position = double.NaN };
}
