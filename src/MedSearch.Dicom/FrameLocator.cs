using System.Buffers.Binary;

namespace MedSearch.Dicom;

/// <summary>
/// Groups encapsulated fragments into frames (PS3.5 A.4): by the Basic Offset Table, else the Extended Offset
/// Table, else one fragment per frame when the counts agree, else by the codestream start markers. An offset
/// table that does not land on fragment boundaries is ignored rather than trusted.
/// </summary>
internal static class FrameLocator
{
    private static ReadOnlySpan<byte> Jp2Signature => [0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20];

    public static (int First, int Count)[] Locate(DicomPixelData pixels, DicomDataset dataset, DicomFragments encapsulated)
    {
        int frames = pixels.NumberOfFrames;
        int count = encapsulated.Fragments.Count;
        if (frames > count)
            throw new DicomException(pixels.Source, $"NumberOfFrames is {frames} but the encapsulated pixel data holds only {count} fragments");

        if (FromOffsets(BasicOffsets(encapsulated.BasicOffsetTable.Span, frames), encapsulated.Positions, frames) is { } basic) return basic;
        if (FromOffsets(ExtendedOffsets(dataset, frames), encapsulated.Positions, frames) is { } extended) return extended;
        if (count == frames) return [.. Enumerable.Range(0, frames).Select(i => (i, 1))];
        if (frames == 1) return [(0, count)];

        var starts = MarkerStarts(pixels.TransferSyntax.PixelEncoding, encapsulated.Fragments);
        if (starts is not null && starts.Count == frames && starts[0] == 0)
        {
            var result = new (int, int)[frames];
            for (int i = 0; i < frames; i++) result[i] = (starts[i], (i + 1 < frames ? starts[i + 1] : count) - starts[i]);
            return result;
        }
        var markers = starts is null ? $"{pixels.TransferSyntax.Name} has no start marker to split on" : $"{starts.Count} fragments start with a frame marker";
        throw new DicomException(pixels.Source,
            $"cannot group {count} fragments into {frames} frames: no usable basic or extended offset table, and {markers}");
    }

    /// <summary>The table's offsets, or null when its size does not hold one per frame (checked before allocating).</summary>
    private static long[]? BasicOffsets(ReadOnlySpan<byte> table, int frames)
    {
        if (table.Length != 4L * frames) return null;
        var offsets = new long[table.Length / 4];
        for (int i = 0; i < offsets.Length; i++) offsets[i] = BinaryPrimitives.ReadUInt32LittleEndian(table[(i * 4)..]);
        return offsets;
    }

    private static long[]? ExtendedOffsets(DicomDataset dataset, int frames)
    {
        var element = dataset.Find(DicomTag.ExtendedOffsetTable);
        if (element is null || element.IsTruncated) return null;
        var table = element.Value.Span;
        if (table.Length != 8L * frames) return null;
        var offsets = new long[table.Length / 8];
        for (int i = 0; i < offsets.Length; i++)
        {
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(table[(i * 8)..]);
            if (offset > long.MaxValue) return null;
            offsets[i] = (long)offset;
        }
        return offsets;
    }

    /// <summary>Frames from an offset table, or null when it has the wrong count or misses a fragment boundary.</summary>
    private static (int, int)[]? FromOffsets(long[]? offsets, IReadOnlyList<long> positions, int frames)
    {
        if (offsets is null || offsets.Length != frames || offsets[0] != 0) return null;
        var firsts = new int[frames];
        for (int i = 0; i < frames; i++)
        {
            int index = BinarySearch(positions, offsets[i]);
            if (index < 0 || (i > 0 && index <= firsts[i - 1])) return null;
            firsts[i] = index;
        }
        var result = new (int, int)[frames];
        for (int i = 0; i < frames; i++) result[i] = (firsts[i], (i + 1 < frames ? firsts[i + 1] : positions.Count) - firsts[i]);
        return result;
    }

    private static int BinarySearch(IReadOnlyList<long> sorted, long value)
    {
        int low = 0, high = sorted.Count - 1;
        while (low <= high)
        {
            int middle = low + (high - low) / 2;
            if (sorted[middle] == value) return middle;
            if (sorted[middle] < value) low = middle + 1;
            else high = middle - 1;
        }
        return -1;
    }

    /// <summary>Indices of fragments that begin a codestream, or null when the encoding has no marker to look for.</summary>
    private static List<int>? MarkerStarts(PixelEncoding encoding, IReadOnlyList<ReadOnlyMemory<byte>> fragments)
    {
        if (encoding is not (PixelEncoding.Jpeg or PixelEncoding.JpegLs or PixelEncoding.Jpeg2000)) return null;
        var starts = new List<int>();
        for (int i = 0; i < fragments.Count; i++)
            if (StartsCodestream(encoding, fragments[i].Span)) starts.Add(i);
        return starts;
    }

    /// <summary>SOI (FFD8) for the JPEG family; SOC (FF4F) or a JP2 signature box for JPEG 2000.</summary>
    private static bool StartsCodestream(PixelEncoding encoding, ReadOnlySpan<byte> fragment) => encoding switch
    {
        PixelEncoding.Jpeg or PixelEncoding.JpegLs => fragment.Length >= 2 && fragment[0] == 0xFF && fragment[1] == 0xD8,
        PixelEncoding.Jpeg2000 => fragment.Length >= 2 && fragment[0] == 0xFF && fragment[1] == 0x4F || fragment.StartsWith(Jp2Signature),
        _ => false,
    };
}
