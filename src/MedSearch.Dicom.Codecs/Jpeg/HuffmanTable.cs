namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// A decoding table built from a DHT segment (T.81 Annex C): codes of up to <see cref="FastBits"/> bits resolve in one
/// lookup; longer ones fall back to the canonical max-code search of F.2.2.3. AC tables of DCT scans also resolve
/// the coefficient itself in that lookup when code and magnitude bits fit (<see cref="FastAc"/>).
/// </summary>
internal sealed class HuffmanTable
{
    public const int FastBits = 9;

    /// <summary>Indexed by the next <see cref="FastBits"/> bits: (code length &lt;&lt; 8) | symbol, or 0 for a longer code.</summary>
    public readonly ushort[] Fast = new ushort[1 << FastBits];

    /// <summary>
    /// For AC tables, indexed like <see cref="Fast"/>: (coefficient &lt;&lt; 16) | (zero run &lt;&lt; 8) | (code + magnitude bits),
    /// or 0 where they do not fit in <see cref="FastBits"/> or the symbol is EOB/ZRL. Most coefficients decode here.
    /// </summary>
    public int[]? FastAc { get; private set; }

    private readonly int[] _maxCode = new int[17];
    private readonly int[] _valueOffset = new int[17];
    private readonly byte[] _values;
    private readonly int _id;

    private HuffmanTable(byte[] values, int id)
    {
        _values = values;
        _id = id;
    }

    /// <summary>Parses the tables of one DHT segment body; lossless JPEG only uses the DC class (Tc = 0) and passes no AC tables.</summary>
    public static void ParseSegment(ReadOnlySpan<byte> payload, HuffmanTable?[] dcTables, HuffmanTable?[]? acTables = null)
    {
        while (!payload.IsEmpty)
        {
            if (payload.Length < 17)
                throw new CodecException($"DHT segment ends inside a table header ({payload.Length} bytes left).");
            int tableClass = payload[0] >> 4, id = payload[0] & 0xF;
            if (tableClass > 1 || id > 3)
                throw new CodecException($"DHT defines table class {tableClass} id {id}; class must be 0..1 and id 0..3.");
            ReadOnlySpan<byte> counts = payload.Slice(1, 16);
            int total = 0;
            foreach (byte n in counts)
                total += n;
            if (total > 256 || payload.Length < 17 + total)
                throw new CodecException($"DHT table {id} declares {total} codes but the segment holds {payload.Length - 17} symbol bytes.");
            if (tableClass == 0)
                dcTables[id] = Build(counts, payload.Slice(17, total), id);
            else if (acTables is not null)
                acTables[id] = Build(counts, payload.Slice(17, total), id).WithFastAc();
            payload = payload[(17 + total)..];
        }
    }

    private static HuffmanTable Build(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> values, int id)
    {
        var table = new HuffmanTable(values.ToArray(), id);
        int code = 0, index = 0;
        for (int length = 1; length <= 16; length++)
        {
            int n = counts[length - 1];
            table._maxCode[length] = -1;
            if (n > 0)
            {
                table._valueOffset[length] = index - code;
                for (int i = 0; i < n; i++, code++, index++)
                {
                    if (code >= 1 << length)
                        throw new CodecException($"DHT table {id} assigns more {length}-bit codes than exist.");
                    if (length <= FastBits)
                    {
                        int shift = FastBits - length;
                        table.Fast.AsSpan(code << shift, 1 << shift).Fill((ushort)((length << 8) | values[index]));
                    }
                }
                table._maxCode[length] = code - 1;
            }
            code <<= 1;
        }
        return table;
    }

    private HuffmanTable WithFastAc()
    {
        var fastAc = new int[1 << FastBits];
        for (int bits = 0; bits < fastAc.Length; bits++)
        {
            int entry = Fast[bits];
            int length = entry >> 8, run = (entry >> 4) & 0xF, size = entry & 0xF;
            if (entry == 0 || size == 0 || length + size > FastBits)
                continue;
            // The magnitude bits follow the code inside the same look-ahead.
            int magnitude = (bits >> (FastBits - length - size)) & ((1 << size) - 1);
            fastAc[bits] = (JpegBitReader.Extend(magnitude, size) << 16) | (run << 8) | (length + size);
        }
        FastAc = fastAc;
        return this;
    }

    /// <summary>Resolves a code longer than <see cref="FastBits"/> from the left-aligned bit buffer.</summary>
    /// <returns>(code length &lt;&lt; 8) | symbol.</returns>
    public int DecodeSlow(ulong bits)
    {
        int code16 = (int)(bits >> 48);
        for (int length = FastBits + 1; length <= 16; length++)
        {
            int code = code16 >> (16 - length);
            if (code <= _maxCode[length])
                return (length << 8) | _values[code + _valueOffset[length]];
        }
        throw new CodecException($"Entropy-coded data holds a code that Huffman table {_id} does not define.");
    }
}
