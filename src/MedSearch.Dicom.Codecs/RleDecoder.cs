using System.Buffers.Binary;

namespace MedSearch.Dicom.Codecs;

/// <summary>
/// DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header of segment count and offsets, then one PackBits segment per
/// byte plane — for each sample in order, its most significant byte first.
/// </summary>
public sealed class RleDecoder : IFrameDecoder
{
    private const int HeaderBytes = 64;
    private const int MaxSegments = 15;

    public string Name => "RLE Lossless (managed)";

    public string Decode(ReadOnlySpan<byte> compressed, in FrameFormat format, Span<byte> destination)
    {
        FrameOutput.Validate(format, destination.Length);
        int bytesPerSample = format.BytesPerSample;
        int expectedSegments = format.SamplesPerPixel * bytesPerSample;
        if (compressed.Length < HeaderBytes)
            throw new CodecException($"RLE frame is {compressed.Length} bytes, shorter than its {HeaderBytes}-byte header.");

        uint segmentCount = BinaryPrimitives.ReadUInt32LittleEndian(compressed);
        if (segmentCount != expectedSegments)
            throw new CodecException(
                $"RLE header declares {segmentCount} segments; {format.SamplesPerPixel} sample(s) of {bytesPerSample} byte(s) need {expectedSegments}.");

        Span<int> starts = stackalloc int[MaxSegments + 1];
        for (int i = 0; i < expectedSegments; i++)
        {
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(compressed[(4 + 4 * i)..]);
            if (offset < HeaderBytes || offset > compressed.Length)
                throw new CodecException($"RLE segment {i} starts at offset {offset}, outside the {compressed.Length}-byte frame (data begins at {HeaderBytes}).");
            if (i > 0 && offset < starts[i - 1])
                throw new CodecException($"RLE segment {i} starts at offset {offset}, before segment {i - 1} at {starts[i - 1]}.");
            starts[i] = (int)offset;
        }
        starts[expectedSegments] = compressed.Length;

        int pixels = format.Rows * format.Columns;
        int pixelStride = expectedSegments;
        Span<byte> frame = destination[..(int)format.FrameBytes];
        for (int segment = 0; segment < expectedSegments; segment++)
        {
            int sample = segment / bytesPerSample;
            int significance = segment % bytesPerSample;
            // Segments run most significant byte first; the output is little-endian, so that byte lands last.
            int byteInPixel = sample * bytesPerSample + (bytesPerSample - 1 - significance);
            DecodeSegment(compressed[starts[segment]..starts[segment + 1]], frame[byteInPixel..], pixelStride, pixels, segment);
        }

        FrameOutput.SignExtend(frame, format);
        return format.PhotometricInterpretation;
    }

    /// <summary>PackBits: n in 0..127 copies n+1 literal bytes, n in -127..-1 repeats the next byte 1-n times, -128 is a no-op.</summary>
    private static void DecodeSegment(ReadOnlySpan<byte> source, Span<byte> destination, int stride, int count, int segment)
    {
        int read = 0;
        int written = 0;
        while (written < count)
        {
            if (read >= source.Length)
                throw new CodecException($"RLE segment {segment} ends after {written} of its {count} bytes.");
            int header = (sbyte)source[read++];
            if (header == -128)
                continue;
            int length = header >= 0 ? header + 1 : 1 - header;
            // Rows are coded separately (G.3.1), so no run of a well-formed segment passes the end of the plane.
            if (length > count - written)
                throw new CodecException($"RLE segment {segment} has a run {length - (count - written)} bytes past the end of its {count}-byte plane; the frame size is wrong.");
            if (header >= 0)
            {
                if (length > source.Length - read)
                    throw new CodecException($"RLE segment {segment} has a {length}-byte literal run but only {source.Length - read} bytes left.");
                ReadOnlySpan<byte> literal = source.Slice(read, length);
                if (stride == 1)
                {
                    literal.CopyTo(destination[written..]);
                }
                else
                {
                    for (int i = 0; i < length; i++)
                        destination[(written + i) * stride] = literal[i];
                }
                read += length;
            }
            else
            {
                if (read >= source.Length)
                    throw new CodecException($"RLE segment {segment} ends inside a replicate run.");
                byte value = source[read++];
                if (stride == 1)
                {
                    destination.Slice(written, length).Fill(value);
                }
                else
                {
                    for (int i = 0; i < length; i++)
                        destination[(written + i) * stride] = value;
                }
            }
            written += length;
        }
        // A segment is padded to even length at most: more data than the plane needs means the frame is smaller than the dataset says.
        if (source.Length - read > 1)
            throw new CodecException($"RLE segment {segment} holds {source.Length - read} bytes more than its {count}-byte plane needs; the frame size is wrong.");
    }
}
