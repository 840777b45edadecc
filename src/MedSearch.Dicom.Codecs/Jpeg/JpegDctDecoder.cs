using System.Buffers.Binary;
using System.Runtime.Intrinsics;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// Sequential Huffman DCT decoding (T.81 Annex F: SOF0 baseline and SOF1 extended, 8- or 12-bit): interleaved and
/// non-interleaved scans, any sampling factors, restart intervals. Dequantisation and the IDCT are libjpeg's (islow),
/// so that samples match the libjpeg inside GDCM and DCMTK. Written here because JpegLibrary's scan decoding was most
/// of our lossy decode time; JpegLibrary still decodes progressive frames.
/// </summary>
internal static unsafe class JpegDctDecoder
{
    /// <summary>One component of a scan and its decoding state.</summary>
    private sealed class ScanComponent(JpegSampleTarget target, HuffmanTable dc, HuffmanTable ac, int* dequantisation, int horizontal, int vertical)
    {
        public readonly JpegSampleTarget Target = target;
        public readonly HuffmanTable Dc = dc;
        public readonly HuffmanTable Ac = ac;
        public readonly int* Dequantisation = dequantisation;
        public readonly int Horizontal = horizontal;
        public readonly int Vertical = vertical;
        public int Predictor;
    }

    /// <param name="header">The stream's frame header, as <see cref="JpegFrame.ReadHeader"/> read it and the caller checked it.</param>
    /// <param name="targets">Where each frame component's samples go, in frame order, each at the component's own resolution.</param>
    public static void Decode(ReadOnlySpan<byte> data, JpegFrame header, ReadOnlySpan<JpegSampleTarget> targets)
    {
        var reader = new JpegSegmentReader(data) { Position = 2 };
        var dcTables = new HuffmanTable?[4];
        var acTables = new HuffmanTable?[4];
        int* dequantisation = stackalloc int[4 * DequantisationLength];
        int definedTables = 0;
        int restartInterval = 0;
        int coded = 0;
        bool frameSeen = false;
        while (reader.TryNext(out byte marker, out ReadOnlySpan<byte> payload))
        {
            switch (marker)
            {
                case JpegSegmentReader.EndOfImage:
                    int all = (1 << header.Components.Length) - 1;
                    if (coded != all)
                        throw new CodecException($"JPEG stream reaches EOI with components uncoded (coded mask 0x{coded:X} of 0x{all:X}).");
                    return;
                case JpegSegmentReader.DefineHuffmanTables:
                    HuffmanTable.ParseSegment(payload, dcTables, acTables);
                    break;
                case JpegSegmentReader.DefineQuantisationTables:
                    definedTables |= ParseQuantisation(payload, dequantisation);
                    break;
                case JpegSegmentReader.DefineRestartInterval:
                    restartInterval = JpegSegmentReader.ReadRestartInterval(payload);
                    break;
                case JpegSegmentReader.StartOfScan:
                    if (!frameSeen)
                        throw new CodecException("JPEG scan (SOS) precedes the frame header.");
                    ScanComponent[] scan = ParseScan(payload, header, targets, dcTables, acTables, dequantisation, definedTables, ref coded);
                    reader.Position = header.Precision == 8
                        ? DecodeScan<EightBitDct>(data, reader.Position, header, scan, restartInterval)
                        : DecodeScan<TwelveBitDct>(data, reader.Position, header, scan, restartInterval);
                    break;
                case JpegSegmentReader.DefineNumberOfLines:
                    throw new CodecException("JPEG DNL marker (height defined after the scan) is not supported.");
                default:
                    if (JpegSegmentReader.IsStartOfFrame(marker))
                    {
                        if (frameSeen)
                            throw new CodecException("JPEG stream holds more than one frame header.");
                        frameSeen = true;
                    }
                    break;
            }
        }
        throw new CodecException("JPEG stream is truncated: it ends without an EOI marker (0xFFD9).");
    }

    /// <summary>
    /// Zigzag index to natural (row-major) index (T.81 Figure A.6), padded as libjpeg pads jpeg_natural_order: a
    /// corrupt zero run that overshoots coefficient 63 lands on it instead of outside the block.
    /// </summary>
    private static ReadOnlySpan<byte> NaturalOrder =>
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
        63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    ];

    private const int DequantisationLength = 80;

    /// <summary>
    /// Reads the tables of one DQT segment (B.2.4.1), 8- or 16-bit, each into <see cref="DequantisationLength"/> ints
    /// indexed like <see cref="NaturalOrder"/>: (quantiser &lt;&lt; 8) | natural index, the two things the block decoder
    /// needs per coefficient, in one load.
    /// </summary>
    /// <returns>The mask of the table ids it defined.</returns>
    private static int ParseQuantisation(ReadOnlySpan<byte> payload, int* tables)
    {
        int defined = 0;
        while (!payload.IsEmpty)
        {
            int precision = payload[0] >> 4, id = payload[0] & 0xF;
            if (precision > 1 || id > 3)
                throw new CodecException($"DQT defines table {id} of precision {precision}; id must be 0..3 and precision 0 (8-bit) or 1 (16-bit).");
            int length = 1 + 64 * (precision + 1);
            if (payload.Length < length)
                throw new CodecException($"DQT table {id} needs {length} bytes, the segment holds {payload.Length}.");
            for (int k = 0; k < DequantisationLength; k++)
            {
                int zigzag = Math.Min(k, 63);
                int quantiser = precision == 0 ? payload[1 + zigzag] : BinaryPrimitives.ReadUInt16BigEndian(payload[(1 + 2 * zigzag)..]);
                tables[id * DequantisationLength + k] = (quantiser << 8) | NaturalOrder[k];
            }
            defined |= 1 << id;
            payload = payload[length..];
        }
        return defined;
    }

    /// <summary>A scan header (B.2.3): its components in scan order, with their tables. Ss, Se, Ah and Al are fixed for sequential scans; libjpeg ignores them too.</summary>
    private static ScanComponent[] ParseScan(ReadOnlySpan<byte> payload, JpegFrame header, ReadOnlySpan<JpegSampleTarget> targets,
        HuffmanTable?[] dcTables, HuffmanTable?[] acTables, int* dequantisation, int definedTables, ref int coded)
    {
        int count = payload.IsEmpty ? 0 : payload[0];
        if (count is < 1 or > 4 || payload.Length < 1 + 2 * count + 3)
            throw new CodecException($"SOS declares {count} components in a {payload.Length}-byte segment.");
        var scan = new ScanComponent[count];
        int inScan = 0;
        for (int i = 0; i < count; i++)
        {
            byte id = payload[1 + 2 * i];
            int index = Array.FindIndex(header.Components, c => c.Id == id);
            if (index < 0 || (inScan & (1 << index)) != 0)
                throw new CodecException($"SOS names component {id}, which the frame header does not define or the scan already named.");
            inScan |= 1 << index;
            JpegComponent component = header.Components[index];
            int dcId = payload[2 + 2 * i] >> 4, acId = payload[2 + 2 * i] & 0xF;
            HuffmanTable dc = (dcId < 4 ? dcTables[dcId] : null)
                ?? throw new CodecException($"SOS selects DC Huffman table {dcId} for component {id}, but no DHT defined it.");
            HuffmanTable ac = (acId < 4 ? acTables[acId] : null)
                ?? throw new CodecException($"SOS selects AC Huffman table {acId} for component {id}, but no DHT defined it.");
            int table = component.QuantisationTable;
            if (table > 3 || (definedTables & (1 << table)) == 0)
                throw new CodecException($"JPEG component {id} uses quantisation table {table}, which no DQT before its scan defined.");
            scan[i] = new ScanComponent(targets[index], dc, ac, dequantisation + DequantisationLength * table, component.Horizontal, component.Vertical);
        }
        coded |= inScan;
        return scan;
    }

    /// <summary>Decodes one scan's entropy-coded data (A.2: MCUs in raster order) and returns the offset of the marker after it.</summary>
    private static int DecodeScan<TPrecision>(ReadOnlySpan<byte> data, int start, JpegFrame header, ScanComponent[] scan, int restartInterval)
        where TPrecision : IDctPrecision
    {
        int maxH = header.MaxHorizontal, maxV = header.MaxVertical;
        int mcusPerLine, mcuRows;
        if (scan.Length == 1)
        {
            // A non-interleaved MCU is one block of the component, whose size is ceil(X * H / Hmax) by ceil(Y * V / Vmax).
            ScanComponent only = scan[0];
            mcusPerLine = ((header.SamplesPerLine * only.Horizontal + maxH - 1) / maxH + 7) / 8;
            mcuRows = ((header.Lines * only.Vertical + maxV - 1) / maxV + 7) / 8;
        }
        else
        {
            mcusPerLine = (header.SamplesPerLine + 8 * maxH - 1) / (8 * maxH);
            mcuRows = (header.Lines + 8 * maxV - 1) / (8 * maxV);
        }

        int* coefficients = stackalloc int[64];
        short* samples = stackalloc short[64];
        new Span<int>(coefficients, 64).Clear();
        var bits = new JpegBitReader(data, start);
        int mcusLeft = restartInterval;
        for (int mcuRow = 0; mcuRow < mcuRows; mcuRow++)
        {
            for (int mcu = 0; mcu < mcusPerLine; mcu++)
            {
                if (restartInterval != 0)
                {
                    if (mcusLeft == 0)
                    {
                        bits.Restart();
                        foreach (ScanComponent component in scan)
                            component.Predictor = 0;
                        mcusLeft = restartInterval;
                    }
                    mcusLeft--;
                }
                if (scan.Length == 1)
                {
                    DecodeBlock<TPrecision>(ref bits, scan[0], mcu, mcuRow, coefficients, samples);
                    continue;
                }
                foreach (ScanComponent component in scan)
                {
                    for (int v = 0; v < component.Vertical; v++)
                        for (int h = 0; h < component.Horizontal; h++)
                            DecodeBlock<TPrecision>(ref bits, component, mcu * component.Horizontal + h, mcuRow * component.Vertical + v, coefficients, samples);
                }
            }
            bits.ThrowIfOverrun();
        }
        return bits.End();
    }

    private static void DecodeBlock<TPrecision>(ref JpegBitReader bits, ScanComponent component, int column, int row, int* coefficients, short* samples)
        where TPrecision : IDctPrecision
    {
        bool hasAc = bits.DecodeBlock(coefficients, component.Dequantisation, component.Dc, component.Ac, ref component.Predictor);
        int x = column * 8, y = row * 8;
        if (!component.Target.Covers(x, y))
        {
            // A padding block of a partial MCU: decoded for its bits only.
            if (hasAc)
                new Span<int>(coefficients, 64).Clear();
            coefficients[0] = 0;
            return;
        }
        if (hasAc)
        {
            IslowIdct.Transform<TPrecision>(coefficients, samples);
        }
        else
        {
            // Flat blocks (most of a radiograph's background) skip the transform; the value is the one it would give.
            Vector128<short> flat = IslowIdct.Flat<TPrecision>(coefficients[0]);
            coefficients[0] = 0;
            for (int i = 0; i < 64; i += 8)
                flat.Store(samples + i);
        }
        component.Target.Store(samples, x, y);
    }
}
