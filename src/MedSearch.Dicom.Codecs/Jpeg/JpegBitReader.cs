using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// Reads Huffman-coded lossless differences (T.81 H.1.2.2) and DCT coefficient blocks (F.2.2) from entropy-coded
/// data, removing stuffed zero bytes. At a marker or the end of the data it feeds zero bits, as libjpeg does, and
/// remembers how many, so that a scan which needed them is reported as truncated instead of silently decoding zeros.
/// </summary>
internal ref struct JpegBitReader(ReadOnlySpan<byte> data, int position)
{
    // A whole scan's worth of zeros would decode (slowly) into a grey image before the overrun is noticed at its end;
    // a complete scan never needs more than the 64 bits of look-ahead past its last byte.
    private const int MaxPaddingBits = 4096;

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
        int value = Extend(_bits, ssss);
        _bits <<= ssss;
        _count -= ssss;
        return value;
    }

    /// <summary>
    /// Decodes one block of a sequential DCT scan (F.2.2): the DC difference, added to the component's predictor, then
    /// run/size-coded AC coefficients up to EOB, each multiplied by its quantiser into natural order. The bit state
    /// lives in locals of a method of its own (not inlined into the block loop, whose locals would compete for the
    /// registers), where the JIT can keep it in registers. <paramref name="coefficients"/> must be zero on entry.
    /// </summary>
    /// <param name="dequantisation">Per zigzag index, (quantiser &lt;&lt; 8) | natural index: see <see cref="JpegDctDecoder"/>'s DQT parsing.</param>
    /// <returns>Whether any AC code was read: a block without one is flat, its samples all one value.</returns>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public unsafe bool DecodeBlock(int* coefficients, int* dequantisation, HuffmanTable dc, HuffmanTable ac, ref int predictor)
    {
        ulong bits = _bits;
        int count = _count;
        // 16 code bits plus 15 magnitude bits (12-bit precision) always fit after one fill.
        if (count < 32)
            (bits, count) = Refill(bits, count);
        int entry = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dc.Fast), (nint)(bits >> (64 - HuffmanTable.FastBits)));
        if (entry == 0)
            entry = dc.DecodeSlow(bits);
        int length = entry >> 8, size = entry & 0xFF;
        bits <<= length;
        count -= length;
        if (size != 0)
        {
            if (size > 15)
                ThrowBadDcCategory(size);
            predictor += Extend(bits, size);
            bits <<= size;
            count -= size;
        }
        // libjpeg keeps the DC sum in a 16-bit coefficient: damaged data wraps the same way there.
        coefficients[0] = (short)predictor * (dequantisation[0] >> 8);

        // Few locals live through the loop (the natural index rides with the quantiser, the AC look-up table is
        // fetched only on the slow path), so that most stay in callee-saved registers across the refill call.
        ref int fastAc = ref MemoryMarshal.GetArrayDataReference(ac.FastAc!);
        int k = 1;
        while (k < 64)
        {
            if (count < 32)
                (bits, count) = Refill(bits, count);
            nint lookahead = (nint)(bits >> (64 - HuffmanTable.FastBits));
            int quick = Unsafe.Add(ref fastAc, lookahead);
            int step;
            if (quick != 0)
            {
                k += (quick >> 8) & 0xFF;
                length = quick & 0xFF;
                bits <<= length;
                count -= length;
                step = dequantisation[k];
                coefficients[step & 0xFF] = (quick >> 16) * (step >> 8);
                k++;
                continue;
            }
            entry = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(ac.Fast), lookahead);
            if (entry == 0)
                entry = ac.DecodeSlow(bits);
            length = entry >> 8;
            bits <<= length;
            count -= length;
            int run = (entry >> 4) & 0xF;
            size = entry & 0xF;
            if (size == 0)
            {
                // EOB ends the block; ZRL (run 15) skips sixteen zeros.
                if (run != 15)
                    break;
                k += 16;
                continue;
            }
            k += run;
            step = dequantisation[k];
            coefficients[step & 0xFF] = Extend(bits, size) * (step >> 8);
            bits <<= size;
            count -= size;
            k++;
        }
        _bits = bits;
        _count = count;
        return k > 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Extend(ulong bits, int size) => Extend((int)(bits >> (64 - size)), size);

    /// <summary>F.2.2.1 EXTEND of <paramref name="size"/> (1..15) magnitude bits: a leading 0 bit means a negative value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Extend(int magnitude, int size) => magnitude < 1 << (size - 1) ? magnitude - (1 << size) + 1 : magnitude;

    // Kept out of line: inlined, its byte loop costs the decode loops the registers they keep their state in.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private (ulong Bits, int Count) Refill(ulong bits, int count)
    {
        _bits = bits;
        _count = count;
        Fill();
        return (_bits, _count);
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
        if (_padding > MaxPaddingBits)
            throw new CodecException("JPEG entropy-coded data is truncated or corrupt: the scan runs far past the next marker.");
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

    /// <summary>Fails once the decoded codes used more of the zero padding than the look-ahead accounts for.</summary>
    public readonly void ThrowIfOverrun()
    {
        if (_count < _padding)
            throw new CodecException("JPEG entropy-coded data is truncated: the scan needs more bits than precede the next marker.");
    }

    private static void ThrowBadDcCategory(int ssss) =>
        throw new CodecException($"DCT JPEG DC difference category {ssss} is out of range (0..15).");

    private static int ThrowBadCategory(int ssss) =>
        throw new CodecException($"Lossless JPEG difference category {ssss} is out of range (0..16).");
}
