using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MedSearch.Dicom.Codecs.Jpeg;

namespace MedSearch.Dicom.Codecs;

/// <summary>
/// JPEG lossless, process 14 (T.81 Annex H, SOF3 with Huffman coding): predictors 1..7, point transform, restart
/// intervals, 2..16-bit precision, interleaved and non-interleaved scans. Written here because JpegLibrary mispredicts
/// with selection values 2, 3, 6 and 7 and overflows on 16-bit values above 32767.
/// </summary>
public sealed class JpegLosslessDecoder : IFrameDecoder
{
    public string Name => "JPEG Lossless SOF3 (managed)";

    public string Decode(ReadOnlySpan<byte> compressed, in FrameFormat format, Span<byte> destination)
    {
        FrameOutput.Validate(format, destination.Length);
        Span<byte> frame = destination[..(int)format.FrameBytes];

        if (!JpegSegmentReader.StartsWithStartOfImage(compressed))
            throw new CodecException("JPEG stream does not start with an SOI marker (0xFFD8).");
        var reader = new JpegSegmentReader(compressed) { Position = 2 };

        var tables = new HuffmanTable?[4];
        JpegFrame? header = null;
        int restartInterval = 0;
        int coded = 0;
        while (reader.TryNext(out byte marker, out ReadOnlySpan<byte> payload))
        {
            if (marker == JpegSegmentReader.EndOfImage)
                break;
            switch (marker)
            {
                case JpegSegmentReader.DefineHuffmanTables:
                    HuffmanTable.ParseSegment(payload, tables);
                    break;
                case JpegSegmentReader.DefineRestartInterval:
                    restartInterval = JpegSegmentReader.ReadRestartInterval(payload);
                    break;
                case 0xC3:
                    if (header is not null)
                        throw new CodecException("JPEG stream holds more than one frame header.");
                    header = JpegFrame.Parse(marker, payload);
                    CheckFrame(header, format);
                    break;
                case JpegSegmentReader.StartOfScan:
                    if (header is null)
                        throw new CodecException("JPEG scan (SOS) precedes the SOF3 frame header.");
                    var scan = Scan.Parse(payload, header, tables);
                    reader.Position = DecodeScan(compressed, reader.Position, header, scan, restartInterval, frame, format.BytesPerSample);
                    coded |= scan.ComponentMask;
                    break;
                case JpegSegmentReader.DefineNumberOfLines:
                    throw new CodecException("JPEG DNL marker (height defined after the scan) is not supported.");
                case 0xC0 or 0xC1 or 0xC2 when header is null:
                    // A DCT stream under a lossless transfer syntax: decode what is there rather than refuse it.
                    return new JpegBaselineDecoder().Decode(compressed, format, destination);
                default:
                    if (JpegSegmentReader.IsStartOfFrame(marker))
                        throw new CodecException($"JPEG process SOF{marker - 0xC0} is not supported by the lossless decoder (SOF3 only).");
                    break;
            }
        }

        if (header is null)
            throw new CodecException("JPEG stream has no SOF3 frame header.");
        int all = (1 << header.Components.Length) - 1;
        if (coded != all)
            throw new CodecException($"JPEG stream ends before every component was coded (component mask 0x{coded:X} of 0x{all:X}).");

        FrameOutput.SignExtend(frame, format);
        return format.PhotometricInterpretation;
    }

    private static void CheckFrame(JpegFrame header, in FrameFormat format)
    {
        header.CheckAgainst(format);
        if (header.Precision is < 2 or > 16)
            throw new CodecException($"Lossless JPEG precision {header.Precision} is outside 2..16.");
        // With several components an interleaved MCU holds H x V samples of each; DICOM never subsamples lossless data.
        if (header.Components.Length > 1 && header.Components.Any(c => c.Horizontal != 1 || c.Vertical != 1))
            throw new CodecException("Lossless JPEG with subsampled components is not supported.");
    }

    private static int DecodeScan(ReadOnlySpan<byte> data, int start, JpegFrame header, Scan scan, int restartInterval, Span<byte> frame, int bytesPerSample)
    {
        int width = header.SamplesPerLine;
        int height = header.Lines;
        int count = scan.Components.Length;
        int rowLength = count * width;
        int[] rented = ArrayPool<int>.Shared.Rent(2 * rowLength);
        try
        {
            Span<int> rows = rented.AsSpan(0, 2 * rowLength);
            var bits = new JpegBitReader(data, start);
            var state = new ScanState
            {
                Tables = scan.Tables,
                Count = count,
                Width = width,
                Predictor = scan.Predictor,
                Initial = 1 << (header.Precision - scan.PointTransform - 1),
            };

            int mcusLeft = restartInterval > 0 ? restartInterval : int.MaxValue;
            for (int row = 0; row < height; row++)
            {
                Span<int> current = rows.Slice((row & 1) * rowLength, rowLength);
                Span<int> previous = rows.Slice((~row & 1) * rowLength, rowLength);
                int column = 0;
                while (column < width)
                {
                    if (mcusLeft == 0)
                    {
                        bits.Restart();
                        state.RestartRow = row;
                        state.RestartColumn = column;
                        mcusLeft = restartInterval;
                    }
                    int end = width - column <= mcusLeft ? width : column + mcusLeft;
                    DecodeRun(ref bits, ref state, row, column, end, current, previous);
                    mcusLeft -= end - column;
                    column = end;
                }
                WriteRow(current, row, header, scan, frame, bytesPerSample);
            }
            return bits.End();
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rented);
        }
    }

    private struct ScanState
    {
        public HuffmanTable[] Tables;
        public int Count;
        public int Width;
        public int Predictor;
        public int Initial;
        public int RestartRow;
        public int RestartColumn;
    }

    /// <summary>
    /// Decodes columns [from, to) of one row, all inside one restart interval. H.1.2.1: the first sample of the scan
    /// and of each restart interval is predicted by 2^(P-Pt-1); the rest of that first line by Ra; the first sample of
    /// every other line by Rb; everything else by the selected predictor. Rows hold one run of samples per scan component.
    /// </summary>
    private static void DecodeRun(ref JpegBitReader bits, ref ScanState state, int row, int from, int to, Span<int> current, Span<int> previous)
    {
        int count = state.Count;
        int width = state.Width;
        HuffmanTable[] tables = state.Tables;
        ref int cur = ref MemoryMarshal.GetReference(current);
        ref int prev = ref MemoryMarshal.GetReference(previous);
        int column = from;

        if (row == state.RestartRow)
        {
            if (column == state.RestartColumn)
            {
                for (int k = 0; k < count; k++)
                    Unsafe.Add(ref cur, k * width + column) = (state.Initial + bits.ReadDifference(tables[k])) & 0xFFFF;
                column++;
            }
            for (; column < to; column++)
            {
                for (int k = 0; k < count; k++)
                {
                    ref int x = ref Unsafe.Add(ref cur, k * width + column);
                    x = (Unsafe.Add(ref x, -1) + bits.ReadDifference(tables[k])) & 0xFFFF;
                }
            }
            return;
        }

        if (column == 0)
        {
            for (int k = 0; k < count; k++)
                Unsafe.Add(ref cur, k * width) = (Unsafe.Add(ref prev, k * width) + bits.ReadDifference(tables[k])) & 0xFFFF;
            column++;
        }

        int predictor = state.Predictor;
        for (; column < to; column++)
        {
            for (int k = 0; k < count; k++)
            {
                int at = k * width + column;
                int ra = Unsafe.Add(ref cur, at - 1);
                int rb = Unsafe.Add(ref prev, at);
                int rc = Unsafe.Add(ref prev, at - 1);
                // Table H.1; the sums are taken in int and the result modulo 2^16 (H.2.1), as libjpeg does.
                int prediction = predictor switch
                {
                    1 => ra,
                    2 => rb,
                    3 => rc,
                    4 => ra + rb - rc,
                    5 => ra + ((rb - rc) >> 1),
                    6 => rb + ((ra - rc) >> 1),
                    _ => (ra + rb) >> 1,
                };
                Unsafe.Add(ref cur, at) = (prediction + bits.ReadDifference(tables[k])) & 0xFFFF;
            }
        }
    }

    private static void WriteRow(ReadOnlySpan<int> current, int row, JpegFrame header, Scan scan, Span<byte> frame, int bytesPerSample)
    {
        int width = header.SamplesPerLine;
        int stride = header.Components.Length;
        for (int k = 0; k < scan.Components.Length; k++)
            FrameOutput.WriteStrided(current.Slice(k * width, width), frame, row * width * stride + scan.Components[k], stride, bytesPerSample, scan.PointTransform);
    }

    /// <summary>A scan header (T.81 B.2.3) as lossless coding reads it: Ss is the predictor, Al the point transform.</summary>
    private sealed record Scan(int[] Components, HuffmanTable[] Tables, int Predictor, int PointTransform, int ComponentMask)
    {
        public static Scan Parse(ReadOnlySpan<byte> payload, JpegFrame header, HuffmanTable?[] dcTables)
        {
            if (payload.Length < 1)
                throw new CodecException("SOS segment is empty.");
            int count = payload[0];
            if (count is < 1 or > 4 || payload.Length < 1 + 2 * count + 3)
                throw new CodecException($"SOS declares {count} components in a {payload.Length}-byte segment.");
            var components = new int[count];
            var tables = new HuffmanTable[count];
            int mask = 0;
            for (int i = 0; i < count; i++)
            {
                byte id = payload[1 + 2 * i];
                int index = Array.FindIndex(header.Components, c => c.Id == id);
                if (index < 0)
                    throw new CodecException($"SOS names component {id}, which the frame header does not define.");
                if ((mask & (1 << index)) != 0)
                    throw new CodecException($"SOS names component {id} twice.");
                mask |= 1 << index;
                int tableId = payload[2 + 2 * i] >> 4;
                components[i] = index;
                tables[i] = (tableId < 4 ? dcTables[tableId] : null)
                    ?? throw new CodecException($"SOS selects Huffman table {tableId} for component {id}, but no DHT defined it.");
            }
            int predictor = payload[1 + 2 * count];
            int pointTransform = payload[3 + 2 * count] & 0xF;
            if (predictor is < 1 or > 7)
                throw new CodecException($"Lossless JPEG predictor (Ss) {predictor} is outside 1..7.");
            if (pointTransform >= header.Precision)
                throw new CodecException($"Point transform {pointTransform} leaves no bits of the {header.Precision}-bit samples.");
            return new Scan(components, tables, predictor, pointTransform, mask);
        }
    }
}
