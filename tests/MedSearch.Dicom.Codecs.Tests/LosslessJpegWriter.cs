namespace MedSearch.Dicom.Codecs.Tests;

/// <summary>
/// A small SOF3 encoder for what no Debian tool writes: restart intervals (also ones that end mid-row),
/// non-interleaved colour scans and 16-bit Huffman codes. Prediction follows T.81 H.1.2.1, the same reading the
/// decoder has; the DCMTK/GDCM tests are what pin that reading to the reference implementations.
/// </summary>
internal static class LosslessJpegWriter
{
    // Category SSSS (0..16) gets code length 1..13 for 0..12 and 16 for 13..16: long codes exercise the slow
    // Huffman path, and the code space is left incomplete so that no all-ones code is used (C.2).
    private static readonly byte[] Counts = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 4];
    private static readonly byte[] Symbols = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

    public static byte[] Encode(TestImage image, int precision, int predictor, int restartInterval, bool interleaved, int pointTransform = 0)
    {
        FrameFormat f = image.Format;
        var (codes, lengths) = BuildCodes();
        var output = new List<byte> { 0xFF, 0xD8 };
        Segment(output, 0xC4, [0x00, .. Counts, .. Symbols]);
        if (restartInterval > 0)
            Segment(output, 0xDD, [(byte)(restartInterval >> 8), (byte)restartInterval]);
        var sof = new List<byte> { (byte)precision, (byte)(f.Rows >> 8), (byte)f.Rows, (byte)(f.Columns >> 8), (byte)f.Columns, (byte)f.SamplesPerPixel };
        for (int k = 0; k < f.SamplesPerPixel; k++)
            sof.AddRange([(byte)(k + 1), 0x11, 0]);
        Segment(output, 0xC3, [.. sof]);

        int[][] scans = interleaved
            ? [Enumerable.Range(0, f.SamplesPerPixel).ToArray()]
            : Enumerable.Range(0, f.SamplesPerPixel).Select(k => new[] { k }).ToArray();
        foreach (int[] scan in scans)
        {
            var sos = new List<byte> { (byte)scan.Length };
            foreach (int k in scan)
                sos.AddRange([(byte)(k + 1), 0x00]);
            sos.AddRange([(byte)predictor, 0, (byte)pointTransform]);
            Segment(output, 0xDA, [.. sos]);
            EncodeScan(image, scan, precision, predictor, restartInterval, pointTransform, codes, lengths, output);
        }
        output.AddRange([0xFF, 0xD9]);
        return [.. output];
    }

    private static void EncodeScan(TestImage image, int[] scan, int precision, int predictor, int restartInterval, int pointTransform,
        int[] codes, int[] lengths, List<byte> output)
    {
        FrameFormat f = image.Format;
        int mask = (1 << precision) - 1;
        var reconstructed = new int[scan.Length, f.Rows, f.Columns];
        var bits = new BitWriter(output);
        int restartRow = 0, restartColumn = 0, mcus = 0, restarts = 0;
        for (int y = 0; y < f.Rows; y++)
        {
            for (int x = 0; x < f.Columns; x++)
            {
                if (restartInterval > 0 && mcus == restartInterval)
                {
                    bits.Flush();
                    output.AddRange([0xFF, (byte)(0xD0 + restarts++ % 8)]);
                    restartRow = y;
                    restartColumn = x;
                    mcus = 0;
                }
                for (int s = 0; s < scan.Length; s++)
                {
                    int value = (image.Get((y * f.Columns + x) * f.SamplesPerPixel + scan[s]) & mask) >> pointTransform;
                    int prediction;
                    if (y == restartRow && x == restartColumn)
                        prediction = 1 << (precision - pointTransform - 1);
                    else if (y == restartRow)
                        prediction = reconstructed[s, y, x - 1];
                    else if (x == 0)
                        prediction = reconstructed[s, y - 1, x];
                    else
                    {
                        int ra = reconstructed[s, y, x - 1], rb = reconstructed[s, y - 1, x], rc = reconstructed[s, y - 1, x - 1];
                        prediction = predictor switch
                        {
                            1 => ra,
                            2 => rb,
                            3 => rc,
                            4 => ra + rb - rc,
                            5 => ra + ((rb - rc) >> 1),
                            6 => rb + ((ra - rc) >> 1),
                            _ => (ra + rb) >> 1,
                        };
                    }
                    reconstructed[s, y, x] = value;
                    int difference = (value - prediction) & 0xFFFF;
                    if (difference > 32768)
                        difference -= 65536;
                    int ssss = difference == 0 ? 0 : 32 - int.LeadingZeroCount(Math.Abs(difference));
                    bits.Write(codes[ssss], lengths[ssss]);
                    if (ssss is > 0 and < 16)
                        bits.Write(difference > 0 ? difference : difference + (1 << ssss) - 1, ssss);
                }
                mcus++;
            }
        }
        bits.Flush();
    }

    private static (int[] Codes, int[] Lengths) BuildCodes()
    {
        int[] codes = new int[17], lengths = new int[17];
        int code = 0, index = 0;
        for (int length = 1; length <= 16; length++)
        {
            for (int i = 0; i < Counts[length - 1]; i++, code++, index++)
            {
                codes[Symbols[index]] = code;
                lengths[Symbols[index]] = length;
            }
            code <<= 1;
        }
        return (codes, lengths);
    }

    private static void Segment(List<byte> output, byte marker, byte[] body)
    {
        int length = body.Length + 2;
        output.AddRange([0xFF, marker, (byte)(length >> 8), (byte)length]);
        output.AddRange(body);
    }

    private sealed class BitWriter(List<byte> output)
    {
        private int _accumulator;
        private int _count;

        public void Write(int value, int length)
        {
            for (int i = length - 1; i >= 0; i--)
            {
                _accumulator = (_accumulator << 1) | ((value >> i) & 1);
                if (++_count == 8)
                    Emit();
            }
        }

        /// <summary>Pads the last byte with 1-bits (F.1.2.3) before a marker.</summary>
        public void Flush()
        {
            while (_count != 0)
                Write(1, 1);
        }

        private void Emit()
        {
            output.Add((byte)_accumulator);
            if (_accumulator == 0xFF)
                output.Add(0);
            _accumulator = 0;
            _count = 0;
        }
    }
}
