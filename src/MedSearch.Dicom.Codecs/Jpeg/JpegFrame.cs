using System.Buffers.Binary;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <param name="QuantisationTable">Tq, the DQT table selector of DCT frames; lossless frames ignore it, so it is checked where used.</param>
internal readonly record struct JpegComponent(byte Id, int Horizontal, int Vertical, int QuantisationTable);

/// <summary>A frame header (SOFn, T.81 B.2.2) plus the colour-space hints that precede the first scan.</summary>
internal sealed record JpegFrame(byte Marker, int Precision, int Lines, int SamplesPerLine, JpegComponent[] Components)
{
    /// <summary>An APP0 "JFIF" segment: the components are YCbCr (or grey).</summary>
    public bool Jfif { get; private init; }

    /// <summary>The colour transform flag of an APP14 "Adobe" segment (0 none/RGB, 1 YCbCr, 2 YCCK), or -1 without one.</summary>
    public int AdobeTransform { get; private init; } = -1;

    public int MaxHorizontal => Components.Max(c => c.Horizontal);
    public int MaxVertical => Components.Max(c => c.Vertical);

    public static JpegFrame Parse(byte marker, ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 6)
            throw new CodecException($"JPEG frame header SOF{marker - 0xC0} is {payload.Length} bytes, too short.");
        int count = payload[5];
        if (count == 0 || payload.Length < 6 + 3 * count)
            throw new CodecException($"JPEG frame header declares {count} components but holds {(payload.Length - 6) / 3}.");
        var components = new JpegComponent[count];
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> c = payload.Slice(6 + 3 * i, 3);
            int h = c[1] >> 4, v = c[1] & 0xF;
            if (h is < 1 or > 4 || v is < 1 or > 4)
                throw new CodecException($"JPEG component {c[0]} has sampling factors {h}x{v}; each must be 1..4.");
            for (int j = 0; j < i; j++)
            {
                if (components[j].Id == c[0])
                    throw new CodecException($"JPEG frame header names component {c[0]} twice.");
            }
            components[i] = new JpegComponent(c[0], h, v, c[2]);
        }
        return new JpegFrame(marker, payload[0], BinaryPrimitives.ReadUInt16BigEndian(payload[1..]),
            BinaryPrimitives.ReadUInt16BigEndian(payload[3..]), components);
    }

    /// <summary>Reads the markers up to the first scan: the frame header and the JFIF/Adobe colour hints.</summary>
    public static JpegFrame ReadHeader(ReadOnlySpan<byte> data)
    {
        if (!JpegSegmentReader.StartsWithStartOfImage(data))
            throw new CodecException("JPEG stream does not start with an SOI marker (0xFFD8).");
        var reader = new JpegSegmentReader(data) { Position = 2 };
        JpegFrame? frame = null;
        bool jfif = false;
        int adobe = -1;
        while (reader.TryNext(out byte marker, out ReadOnlySpan<byte> payload))
        {
            if (marker == 0xE0 && payload.StartsWith("JFIF\0"u8))
                jfif = true;
            else if (marker == 0xEE && payload.Length >= 12 && payload.StartsWith("Adobe"u8))
                adobe = payload[11];
            else if (JpegSegmentReader.IsStartOfFrame(marker))
                frame = frame is null ? Parse(marker, payload) : throw new CodecException("JPEG stream holds more than one frame header.");
            else if (marker is JpegSegmentReader.StartOfScan or JpegSegmentReader.EndOfImage)
                break;
        }
        if (frame is null)
            throw new CodecException("JPEG stream has no frame header (SOFn) before its first scan.");
        return frame with { Jfif = jfif, AdobeTransform = adobe };
    }

    /// <summary>Never trust the codestream's idea of the frame: it must agree with the dataset before anything is allocated.</summary>
    public void CheckAgainst(in FrameFormat format)
    {
        if (Lines == 0)
            throw new CodecException("JPEG frame defers its height to a DNL marker, which is not supported.");
        if (Lines != format.Rows || SamplesPerLine != format.Columns)
            throw new CodecException($"JPEG frame is {SamplesPerLine}x{Lines}, the dataset says {format.Columns}x{format.Rows}.");
        if (Components.Length != format.SamplesPerPixel)
            throw new CodecException($"JPEG frame has {Components.Length} components, the dataset says SamplesPerPixel {format.SamplesPerPixel}.");
        if (Precision > format.BytesPerSample * 8)
            throw new CodecException($"JPEG precision {Precision} bits does not fit BitsAllocated {format.BitsAllocated}.");
    }
}
