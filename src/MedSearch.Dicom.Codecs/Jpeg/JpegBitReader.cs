using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// Reads Huffman-coded lossless differences (T.81 H.1.2.2) from entropy-coded data, removing stuffed zero bytes.
/// At a marker or the end of the data it feeds zero bits, as libjpeg does, and remembers how many, so that a scan
/// which needed them is reported as truncated instead of silently decoding zeros.
/// </summary>
internal ref struct JpegBitReader(ReadOnlySpan<byte> data, int position)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _position = position;
    private ulong _bits;     // left-aligned: the next bit is bit 63
    private int _count;      // valid bits in _bits, real and padding
    private int _padding;    // zero bits appended after the data ran out; they sit at the low end of _bits
    private bool _atMarker;

    /// <summary>The next difference value: a Huffman-coded magnitude category SSSS and SSSS extra bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadDifference(HuffmanTable table)
    {
        // 16 code bits plus 15 extra bits always fit after one fill.
        if (_count < 32)
            Fill();
        // The index is below 2^FastBits by construction: no bounds check in the hot path.
        int entry = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(table.Fast), (nint)(_bits >> (64 - HuffmanTable.FastBits)));
        if (entry == 0)
            entry = table.DecodeSlow(_bits);
        int length = entry >> 8;
        int ssss = entry & 0xFF;
        _bits <<= length;
        _count -= length;
        if (ssss == 0)
            return 0;
        if (ssss >= 16)
            return ssss == 16 ? 32768 : ThrowBadCategory(ssss);
        int value = (int)(_bits >> (64 - ssss));
        _bits <<= ssss;
        _count -= ssss;
        // F.2.2.1 EXTEND: a leading 0 bit means a negative difference.
        return value < 1 << (ssss - 1) ? value - (1 << ssss) + 1 : value;
    }

    private void Fill()
    {
        if (!_atMarker && _position + 8 <= _data.Length)
        {
            ulong chunk = BinaryPrimitives.ReadUInt64BigEndian(_data[_position..]);
            ulong inverted = ~chunk;
            // Without a 0xFF byte in the next eight there is no stuffing or marker to handle: take whole bytes at once.
            // Bits of the next byte may land below _count too; the next fill ORs in the same byte, so they are harmless.
            if (((inverted - 0x0101010101010101UL) & ~inverted & 0x8080808080808080UL) == 0)
            {
                int bytes = (64 - _count) >> 3;
                _bits |= chunk >> _count;
                _position += bytes;
                _count += bytes * 8;
                return;
            }
        }
        while (_count <= 56)
        {
            uint b = 0;
            if (!_atMarker && _position < _data.Length)
            {
                b = _data[_position];
                if (b != 0xFF)
                {
                    _position++;
                }
                else if (_position + 1 < _data.Length && _data[_position + 1] == 0)
                {
                    _position += 2;
                }
                else
                {
                    _atMarker = true;
                    b = 0;
                    _padding += 8;
                }
            }
            else
            {
                _padding += 8;
            }
            _bits |= (ulong)b << (56 - _count);
            _count += 8;
        }
    }

    /// <summary>Ends a restart interval: discards the partial byte, expects RSTn and resets the bit state.</summary>
    public void Restart()
    {
        ThrowIfOverrun();
        int p = _position;
        while (p + 1 < _data.Length)
        {
            if (_data[p] == 0xFF)
            {
                byte next = _data[p + 1];
                if (next is >= 0xD0 and <= 0xD7)
                {
                    _position = p + 2;
                    _bits = 0;
                    _count = 0;
                    _padding = 0;
                    _atMarker = false;
                    return;
                }
                // 0xFF fill bytes and stuffed zeros are skipped; any other marker means the interval was cut short.
                if (next is not (0xFF or 0x00))
                    throw new CodecException($"Expected a restart marker at offset {p}, found 0xFF{next:X2}.");
            }
            p++;
        }
        throw new CodecException("JPEG data ends where a restart marker was expected.");
    }

    /// <summary>Ends the scan and returns the offset of the marker that follows its entropy-coded data.</summary>
    public int End()
    {
        ThrowIfOverrun();
        for (int p = _position; p + 1 < _data.Length; p++)
        {
            if (_data[p] == 0xFF && _data[p + 1] != 0)
                return p;
        }
        return _data.Length;
    }

    private readonly void ThrowIfOverrun()
    {
        if (_count < _padding)
            throw new CodecException("JPEG entropy-coded data is truncated: the scan needs more bits than precede the next marker.");
    }

    private static int ThrowBadCategory(int ssss) =>
        throw new CodecException($"Lossless JPEG difference category {ssss} is out of range (0..16).");
}
