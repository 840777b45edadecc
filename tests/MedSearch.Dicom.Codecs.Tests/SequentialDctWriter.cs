namespace MedSearch.Dicom.Codecs.Tests;

/// <summary>
/// Writes SOF0/SOF1 streams that no Debian encoder makes: restart intervals, non-interleaved scans, sampling factors
/// such as 3x1 or 1x2, 12-bit data with a 16-bit quantisation table. It codes random quantised coefficients rather
/// than an image (no forward DCT needed): the decoders under comparison see a valid stream either way. Huffman codes
/// run from 2 to 16 bits, so that both the look-ahead and the long-code paths are taken.
/// </summary>
internal static class SequentialDctWriter
{
    /// <param name="sampling">Per component, horizontal and vertical sampling factors, e.g. "22,11,11".</param>
    public static byte[] Encode(int rows, int columns, int precision, string sampling, int restartInterval, bool interleaved, int seed)
    {
        (int H, int V)[] factors = sampling.Split(',').Select(s => (s[0] - '0', s[1] - '0')).ToArray();
        int maxSize = precision == 8 ? 10 : 14;
        var dc = new Code(Enumerable.Range(0, maxSize + 2).Select(s => (byte)s));
        // EOB first, then the run/size pairs by size: the small magnitudes get the short codes.
        var ac = new Code([0x00, .. Enumerable.Range(1, maxSize).SelectMany(size => Enumerable.Range(0, 16).Select(run => (byte)((run << 4) | size))), 0xF0]);

        var jpeg = new MemoryStream();
        jpeg.Write([0xFF, 0xD8]);
        if (factors.Length == 3)
            Segment(jpeg, 0xE0, [.. "JFIF\0"u8, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
        // Table 0 (luma) in 8 bits; table 1 in 16 bits for 12-bit data, with a DC step above 255 to need them.
        int[] luma = Enumerable.Range(0, 64).Select(k => k == 0 ? 4 : 1 + k / 8).ToArray();
        int[] chroma = Enumerable.Range(0, 64).Select(k => k == 0 ? (precision == 8 ? 3 : 257) : 1 + k % 3).ToArray();
        Segment(jpeg, 0xDB, [0x00, .. luma.Select(q => (byte)q)]);
        Segment(jpeg, 0xDB, precision == 8 ? [0x01, .. chroma.Select(q => (byte)q)] : [0x11, .. chroma.SelectMany(q => new[] { (byte)(q >> 8), (byte)q })]);
        Segment(jpeg, 0xC4, [0x00, .. dc.Table]);
        Segment(jpeg, 0xC4, [0x11, .. ac.Table]);
        if (restartInterval > 0)
            Segment(jpeg, 0xDD, [(byte)(restartInterval >> 8), (byte)restartInterval]);
        var frame = new List<byte> { (byte)precision, (byte)(rows >> 8), (byte)rows, (byte)(columns >> 8), (byte)columns, (byte)factors.Length };
        for (int c = 0; c < factors.Length; c++)
            frame.AddRange([(byte)(c + 1), (byte)((factors[c].H << 4) | factors[c].V), (byte)(c == 0 ? 0 : 1)]);
        Segment(jpeg, precision == 8 ? (byte)0xC0 : (byte)0xC1, [.. frame]);

        int maxH = factors.Max(f => f.H), maxV = factors.Max(f => f.V);
        var random = new Random(seed);
        int[][] scans = interleaved ? [Enumerable.Range(0, factors.Length).ToArray()] : Enumerable.Range(0, factors.Length).Select(c => new[] { c }).ToArray();
        foreach (int[] scan in scans)
        {
            Segment(jpeg, 0xDA, [(byte)scan.Length, .. scan.SelectMany(c => new[] { (byte)(c + 1), (byte)0x01 }), 0, 63, 0]);
            var bits = new EntropyWriter(jpeg);
            var predictors = new int[factors.Length];
            int mcusPerLine, mcuRows;
            if (scan.Length == 1)
            {
                mcusPerLine = ((columns * factors[scan[0]].H + maxH - 1) / maxH + 7) / 8;
                mcuRows = ((rows * factors[scan[0]].V + maxV - 1) / maxV + 7) / 8;
            }
            else
            {
                mcusPerLine = (columns + 8 * maxH - 1) / (8 * maxH);
                mcuRows = (rows + 8 * maxV - 1) / (8 * maxV);
            }
            for (int mcu = 0; mcu < mcusPerLine * mcuRows; mcu++)
            {
                if (restartInterval > 0 && mcu > 0 && mcu % restartInterval == 0)
                {
                    bits.PadToByte();
                    jpeg.Write([0xFF, (byte)(0xD0 + (mcu / restartInterval - 1) % 8)]);
                    Array.Clear(predictors);
                }
                foreach (int c in scan)
                {
                    int blocks = scan.Length == 1 ? 1 : factors[c].H * factors[c].V;
                    for (int b = 0; b < blocks; b++)
                        EncodeBlock(bits, RandomBlock(random, precision), ref predictors[c], dc, ac);
                }
            }
            bits.PadToByte();
        }
        jpeg.Write([0xFF, 0xD9]);
        return jpeg.ToArray();
    }

    /// <summary>Quantised coefficients in zigzag order: a DC level and a few ACs, mostly small, some after runs of more than 15 zeros.</summary>
    private static int[] RandomBlock(Random random, int precision)
    {
        var block = new int[64];
        block[0] = precision == 8 ? random.Next(-250, 251) : random.Next(-60, 61);
        for (int n = random.Next(0, 7); n > 0; n--)
        {
            int magnitude = random.Next(10) == 0 ? random.Next(1, 256) : random.Next(1, 20);
            block[random.Next(1, 64)] = random.Next(2) == 0 ? magnitude : -magnitude;
        }
        // Now and then a magnitude category of 10 (8-bit's largest) or 12: large, yet short of the values whose
        // products overflow 32 bits in libjpeg's IDCT, where C leaves the result undefined.
        if (random.Next(20) == 0)
            block[random.Next(1, 64)] = (random.Next(2) == 0 ? 1 : -1) * (precision == 8 ? 512 : 2049);
        return block;
    }

    private static void EncodeBlock(EntropyWriter bits, int[] block, ref int predictor, Code dc, Code ac)
    {
        int difference = block[0] - predictor;
        predictor = block[0];
        int category = Category(difference);
        bits.Put(dc.Codes[category], dc.Lengths[category]);
        bits.PutMagnitude(difference, category);
        int run = 0;
        for (int k = 1; k < 64; k++)
        {
            if (block[k] == 0)
            {
                run++;
                continue;
            }
            for (; run > 15; run -= 16)
                bits.Put(ac.Codes[0xF0], ac.Lengths[0xF0]);
            int size = Category(block[k]);
            int symbol = (run << 4) | size;
            bits.Put(ac.Codes[symbol], ac.Lengths[symbol]);
            bits.PutMagnitude(block[k], size);
            run = 0;
        }
        if (run > 0)
            bits.Put(ac.Codes[0], ac.Lengths[0]);
    }

    private static int Category(int value) => value == 0 ? 0 : 32 - int.LeadingZeroCount(Math.Abs(value));

    private static void Segment(MemoryStream jpeg, byte marker, byte[] body)
    {
        jpeg.Write([0xFF, marker, (byte)((body.Length + 2) >> 8), (byte)(body.Length + 2)]);
        jpeg.Write(body);
    }

    /// <summary>A canonical Huffman code (C.2) for the symbols, in order, with lengths 2, 4, 6, ... 12 and then 16 bits.</summary>
    private sealed class Code
    {
        public readonly int[] Codes = new int[256];
        public readonly int[] Lengths = new int[256];
        public readonly byte[] Table;

        public Code(IEnumerable<byte> symbols)
        {
            byte[] values = symbols.ToArray();
            var counts = new byte[16];
            int left = values.Length;
            foreach ((int length, int room) in new[] { (2, 2), (4, 2), (6, 4), (8, 8), (10, 16), (12, 32), (16, 256) })
            {
                counts[length - 1] = (byte)Math.Min(room, left);
                left -= counts[length - 1];
            }
            int code = 0, index = 0;
            for (int length = 1; length <= 16; length++, code <<= 1)
            {
                for (int i = 0; i < counts[length - 1]; i++, code++, index++)
                {
                    Codes[values[index]] = code;
                    Lengths[values[index]] = length;
                }
            }
            Table = [.. counts, .. values];
        }
    }

    private sealed class EntropyWriter(MemoryStream jpeg)
    {
        private ulong _bits;
        private int _count;

        public void Put(int value, int length)
        {
            _bits = (_bits << length) | (uint)(value & ((1 << length) - 1));
            _count += length;
            for (; _count >= 8; _count -= 8)
            {
                byte next = (byte)(_bits >> (_count - 8));
                jpeg.WriteByte(next);
                if (next == 0xFF)
                    jpeg.WriteByte(0);
            }
        }

        /// <summary>F.1.2.1: a negative value is sent as its ones' complement in <paramref name="size"/> bits.</summary>
        public void PutMagnitude(int value, int size)
        {
            if (size > 0)
                Put(value > 0 ? value : value - 1, size);
        }

        /// <summary>Fills the last byte with 1-bits (F.1.2.3) before a marker.</summary>
        public void PadToByte()
        {
            if (_count > 0)
                Put(0xFF, 8 - _count);
        }
    }
}
