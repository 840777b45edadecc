using System.Buffers.Binary;

namespace MedSearch.Dicom;

/// <summary>
/// The Image Pixel module of a dataset and its frames, at the container level: native frames come out
/// little-endian, interleaved and with stored values normalised; encapsulated frames come out as the codestream
/// a codec decodes. Every size the header claims is checked against <see cref="DicomReadLimits"/> and against
/// the bytes present before anything is allocated.
/// </summary>
public sealed class DicomPixelData
{
    private readonly DicomElement _element;
    // Encapsulated frames as runs of fragments; set once by WithEncapsulatedFrames.
    private (int First, int Count)[] _frameFragments = [];
    private readonly long _storedFrameBits;
    private readonly bool _isBigEndian;

    private DicomPixelData(DicomDataset dataset, DicomElement element, int rows, int columns, int samplesPerPixel,
        int bitsAllocated, int bitsStored, int highBit, int pixelRepresentation, string photometric, int planarConfiguration,
        int numberOfFrames)
    {
        Source = dataset.Source;
        TransferSyntax = dataset.TransferSyntax;
        _isBigEndian = dataset.IsBigEndian;
        _element = element;
        Rows = rows;
        Columns = columns;
        SamplesPerPixel = samplesPerPixel;
        BitsAllocated = bitsAllocated;
        BitsStored = bitsStored;
        HighBit = highBit;
        PixelRepresentation = pixelRepresentation;
        PhotometricInterpretation = photometric;
        PlanarConfiguration = planarConfiguration;
        NumberOfFrames = numberOfFrames;
        long storedSamples = IsSubsampled422 ? (long)rows * columns * 2 : (long)rows * columns * samplesPerPixel;
        _storedFrameBits = storedSamples * bitsAllocated;
    }

    public string Source { get; }
    public TransferSyntax TransferSyntax { get; }

    public int Rows { get; }
    public int Columns { get; }
    public int SamplesPerPixel { get; }
    public int BitsAllocated { get; }
    public int BitsStored { get; }
    public int HighBit { get; }
    public int PixelRepresentation { get; }
    public bool IsSigned => PixelRepresentation == 1;

    /// <summary>As stored; a native frame of YBR_FULL_422 comes out as YBR_FULL (see <see cref="GetNativeFrame"/>).</summary>
    public string PhotometricInterpretation { get; }

    public int PlanarConfiguration { get; }
    public int NumberOfFrames { get; }
    public bool IsEncapsulated => TransferSyntax.IsEncapsulated;

    /// <summary>Bytes per sample in a decoded frame: 1 for 1- and 8-bit data, 2 up to 16 bits, 4 above.</summary>
    public int BytesPerSample => SampleBytes(BitsAllocated);

    private static int SampleBytes(int bitsAllocated) => bitsAllocated <= 8 ? 1 : bitsAllocated <= 16 ? 2 : 4;

    /// <summary>Size of one decoded frame: Rows × Columns × Samples × <see cref="BytesPerSample"/>.</summary>
    public long FrameBytes => (long)Rows * Columns * SamplesPerPixel * BytesPerSample;

    /// <summary>Native YBR_FULL_422 stores two luma samples and one chroma pair per two pixels (PS3.3 C.7.6.3.1.2).</summary>
    private bool IsSubsampled422 => !IsEncapsulated && PhotometricInterpretation == "YBR_FULL_422";

    /// <summary>Reads and checks the Image Pixel module of <paramref name="dataset"/> and finds its frames.</summary>
    public static DicomPixelData From(DicomDataset dataset, DicomReadLimits? limits = null)
    {
        limits ??= DicomReadLimits.Default;
        var source = dataset.Source;
        var element = dataset.Find(DicomTag.PixelData);
        if (element is null)
        {
            if (dataset.Contains(DicomTag.FloatPixelData) || dataset.Contains(DicomTag.DoubleFloatPixelData))
                throw new DicomException(source, "float pixel data (7FE0,0008/0009) is not supported; only (7FE0,0010) is");
            throw new DicomException(source, "the dataset has no pixel data (7FE0,0010)");
        }
        var syntax = dataset.TransferSyntax;
        if (!syntax.IsKnown)
            throw new DicomException(source, $"transfer syntax {syntax.Uid} is unknown, so its pixel data cannot be interpreted");

        int rows = Required(dataset, DicomTag.Rows, "Rows");
        int columns = Required(dataset, DicomTag.Columns, "Columns");
        int bitsAllocated = Required(dataset, DicomTag.BitsAllocated, "BitsAllocated");
        int samples = dataset.GetUInt16(DicomTag.SamplesPerPixel) ?? 1;
        int bitsStored = dataset.GetUInt16(DicomTag.BitsStored) ?? bitsAllocated;
        int highBit = dataset.GetUInt16(DicomTag.HighBit) ?? bitsStored - 1;
        int representation = dataset.GetUInt16(DicomTag.PixelRepresentation) ?? 0;
        int planar = dataset.GetUInt16(DicomTag.PlanarConfiguration) ?? 0;
        var photometric = dataset.GetString(DicomTag.PhotometricInterpretation)
            ?? throw new DicomException(source, "PhotometricInterpretation (0028,0004) is missing");
        // pydicom reads an absent or zero NumberOfFrames as one frame; so do we, so that both agree on such files.
        int frames = dataset.GetInt(DicomTag.NumberOfFrames) is { } n and not 0 ? n : 1;

        if (rows == 0 || columns == 0) throw new DicomException(source, $"image is {rows}×{columns}: Rows and Columns must be at least 1");
        if (frames < 0) throw new DicomException(source, $"NumberOfFrames is {frames}");
        if (samples is < 1 or > 4) throw new DicomException(source, $"SamplesPerPixel {samples} is not 1, 3 or 4");
        if (bitsAllocated is not (1 or 8 or 16 or 32)) throw new DicomException(source, $"BitsAllocated {bitsAllocated} is not supported (1, 8, 16 or 32)");
        if (bitsStored < 1 || bitsStored > bitsAllocated) throw new DicomException(source, $"BitsStored {bitsStored} is outside 1..BitsAllocated ({bitsAllocated})");
        if (highBit < bitsStored - 1 || highBit >= bitsAllocated)
            throw new DicomException(source, $"HighBit {highBit} does not fit BitsStored {bitsStored} within BitsAllocated {bitsAllocated}");
        if (representation is not (0 or 1)) throw new DicomException(source, $"PixelRepresentation {representation} is neither 0 nor 1");
        if (planar is not (0 or 1)) throw new DicomException(source, $"PlanarConfiguration {planar} is neither 0 nor 1");

        Int128 totalSamples = (Int128)rows * columns * frames * samples;
        if (totalSamples > limits.MaxPixelSamples)
            throw new DicomException(source, $"Rows×Columns×Frames×Samples = {rows}×{columns}×{frames}×{samples} = {totalSamples} exceeds the limit of {limits.MaxPixelSamples}");
        int bytesPerSample = SampleBytes(bitsAllocated);
        if (totalSamples * bytesPerSample > limits.MaxPixelBytes)
            throw new DicomException(source, $"decoded pixel data would take {totalSamples * bytesPerSample} bytes, more than the limit of {limits.MaxPixelBytes}");
        // Frames are handed out as spans: whatever the limits allow in total, one frame must fit one buffer.
        Int128 frameBytes = (Int128)rows * columns * samples * bytesPerSample;
        if (frameBytes > Array.MaxLength)
            throw new DicomException(source, $"one {rows}×{columns}×{samples} frame would take {frameBytes} bytes, more than one buffer holds");

        var header = new DicomPixelData(dataset, element, rows, columns, samples, bitsAllocated, bitsStored, highBit,
            representation, photometric, planar, frames);
        return syntax.IsEncapsulated ? header.WithEncapsulatedFrames(dataset) : header.CheckNative();
    }

    /// <summary>
    /// One frame: for an encapsulated transfer syntax its codestream (fragments joined when it spans several);
    /// for a native one the decoded frame of <see cref="GetNativeFrame"/>, a slice of the file when no conversion is needed.
    /// </summary>
    public ReadOnlyMemory<byte> GetFrame(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, NumberOfFrames);
        if (!IsEncapsulated)
        {
            if (!NeedsConversion) return _element.Value.Slice((int)(index * (_storedFrameBits / 8)), (int)FrameBytes);
            var frame = new byte[FrameBytes];
            GetNativeFrame(index, frame);
            return frame;
        }
        if (TransferSyntax.PixelEncoding == PixelEncoding.Video)
            throw new DicomException(Source, $"{TransferSyntax.Name} is one video stream; its frames are not separately encoded");
        var fragments = _element.Fragments!.Fragments;
        var (first, count) = _frameFragments[index];
        if (count == 1) return fragments[first];
        long size = 0;
        for (int i = first; i < first + count; i++) size += fragments[i].Length;
        if (size > Array.MaxLength) throw new DicomException(Source, $"frame {index} spans {size} bytes of fragments, more than one array holds");
        var joined = new byte[size];
        int offset = 0;
        for (int i = first; i < first + count; i++)
        {
            fragments[i].Span.CopyTo(joined.AsSpan(offset));
            offset += fragments[i].Length;
        }
        return joined;
    }

    /// <summary>
    /// Writes native frame <paramref name="index"/> to <paramref name="destination"/> (at least <see cref="FrameBytes"/>)
    /// in the form codecs produce: little-endian, interleaved, <see cref="BytesPerSample"/> bytes per sample, stored
    /// values only: bits outside BitsStored cleared and signed values sign-extended to the full sample (PS3.5 8.1.1).
    /// BitsAllocated 1 comes out as one byte (0 or 1) per pixel; YBR_FULL_422 comes out upsampled to YBR_FULL.
    /// </summary>
    /// <returns>The photometric interpretation of what was written.</returns>
    public string GetNativeFrame(int index, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, NumberOfFrames);
        if (IsEncapsulated)
            throw new DicomException(Source, $"frames in {TransferSyntax} are encapsulated; a codec must decode GetFrame's codestream");
        if (destination.Length < FrameBytes)
            throw new ArgumentException($"destination holds {destination.Length} bytes; a frame needs {FrameBytes}", nameof(destination));
        var output = destination[..(int)FrameBytes];
        var stored = _element.Value.Span;

        if (BitsAllocated == 1)
        {
            UnpackBits(stored, index * _storedFrameBits, output);
            return PhotometricInterpretation;
        }

        int storedFrameBytes = (int)(_storedFrameBits / 8);
        int start = index * storedFrameBytes;
        // Big endian OW holds 8-bit samples two to a 16-bit word, so each byte pair is swapped in the file (PS3.5 A.3).
        bool swappedBytePairs = _isBigEndian && BytesPerSample == 1 && _element.VR == DicomVR.OW;
        if (IsSubsampled422)
        {
            Upsample422(stored, start, storedFrameBytes, swappedBytePairs, output);
            return "YBR_FULL";
        }
        if (PlanarConfiguration == 1 && SamplesPerPixel > 1)
            Interleave(stored, start, swappedBytePairs, output);
        else
            CopyStored(stored, start, storedFrameBytes, swappedBytePairs, output);

        if (_isBigEndian && BytesPerSample > 1) SwapToLittleEndian(output, BytesPerSample);
        if (NeedsNormalising) Normalise(output);
        return PhotometricInterpretation;
    }

    private bool NeedsNormalising => BitsStored < BitsAllocated;

    private bool NeedsConversion =>
        _isBigEndian || NeedsNormalising || BitsAllocated == 1 || IsSubsampled422 || PlanarConfiguration == 1 && SamplesPerPixel > 1;

    private DicomPixelData CheckNative()
    {
        if (_element.Fragments is not null)
            throw new DicomException(Source, $"{TransferSyntax} is native, but pixel data (7FE0,0010) is encapsulated (undefined length)");
        if (IsSubsampled422 && (SamplesPerPixel != 3 || BitsAllocated != 8 || (long)Rows * Columns % 2 != 0))
            throw new DicomException(Source, $"YBR_FULL_422 needs 3 samples of 8 bits and an even pixel count; this is {SamplesPerPixel} samples of {BitsAllocated} bits, {Rows}×{Columns}");
        if (BitsAllocated == 1 && SamplesPerPixel != 1)
            throw new DicomException(Source, $"BitsAllocated 1 with {SamplesPerPixel} samples per pixel is not supported");
        var needed = ((Int128)_storedFrameBits * NumberOfFrames + 7) / 8;
        int held = _element.Value.Length;
        // More is fine: PS3.5 pads odd lengths with one byte, and some writers pad further.
        if (held < needed)
        {
            if (_element.IsTruncated)
                throw new DicomException(Source, $"element (7FE0,0010) claims {_element.DeclaredLength} bytes but only {held} remain; the image needs {needed}");
            throw new DicomException(Source,
                $"pixel data holds {held} bytes, Rows×Columns×Frames×Samples×Bits = {Rows}×{Columns}×{NumberOfFrames}×{(IsSubsampled422 ? "2 (YBR_FULL_422)" : SamplesPerPixel)}×{BitsAllocated} needs {needed}");
        }
        return this;
    }

    private DicomPixelData WithEncapsulatedFrames(DicomDataset dataset)
    {
        var encapsulated = _element.Fragments
            ?? throw new DicomException(Source, $"{TransferSyntax} needs encapsulated pixel data, but (7FE0,0010) has a defined length of {_element.DeclaredLength}");
        if (encapsulated.IsTruncated)
            throw new DicomException(Source, "the file ends inside the encapsulated pixel data (7FE0,0010)");
        if (encapsulated.Fragments.Count == 0)
            throw new DicomException(Source, "encapsulated pixel data (7FE0,0010) holds no fragments");
        if (TransferSyntax.PixelEncoding != PixelEncoding.Video)
            _frameFragments = FrameLocator.Locate(this, dataset, encapsulated);
        return this;
    }

    private static int Required(DicomDataset dataset, DicomTag tag, string name) =>
        dataset.GetUInt16(tag) ?? throw new DicomException(dataset.Source, $"{name} {tag} is missing");

    /// <summary>Bits are packed little-endian within each byte (PS3.5 8.1.1); frames need not start on a byte boundary.</summary>
    private void UnpackBits(ReadOnlySpan<byte> stored, long firstBit, Span<byte> output)
    {
        for (int i = 0; i < output.Length; i++)
        {
            long bit = firstBit + i;
            output[i] = (byte)((stored[(int)(bit >> 3)] >> (int)(bit & 7)) & 1);
        }
    }

    private static void CopyStored(ReadOnlySpan<byte> stored, int start, int count, bool swappedBytePairs, Span<byte> output)
    {
        if (!swappedBytePairs)
        {
            stored.Slice(start, count).CopyTo(output);
            return;
        }
        for (int i = 0; i < count; i++) output[i] = PairSwapped(stored, start + i);
    }

    /// <summary>The byte at <paramref name="position"/> of a big endian OW value read as 8-bit samples.</summary>
    private static byte PairSwapped(ReadOnlySpan<byte> stored, int position)
    {
        int swapped = position ^ 1;
        // An odd-length value (missing its pad byte) has no partner for the last byte.
        return swapped < stored.Length ? stored[swapped] : stored[position];
    }

    private void Interleave(ReadOnlySpan<byte> stored, int start, bool swappedBytePairs, Span<byte> output)
    {
        int bytes = BytesPerSample, samples = SamplesPerPixel, pixels = Rows * Columns;
        for (int s = 0; s < samples; s++)
        {
            int plane = start + s * pixels * bytes;
            for (int p = 0; p < pixels; p++)
            {
                int from = plane + p * bytes, to = (p * samples + s) * bytes;
                if (swappedBytePairs) output[to] = PairSwapped(stored, from);
                else stored.Slice(from, bytes).CopyTo(output.Slice(to, bytes));
            }
        }
    }

    /// <summary>Y1 Y2 Cb Cr becomes Y1 Cb Cr Y2 Cb Cr, as pydicom does.</summary>
    private static void Upsample422(ReadOnlySpan<byte> stored, int start, int count, bool swappedBytePairs, Span<byte> output)
    {
        for (int i = 0, o = 0; i < count; i += 4, o += 6)
        {
            byte y1 = StoredByte(stored, start + i, swappedBytePairs), y2 = StoredByte(stored, start + i + 1, swappedBytePairs);
            byte cb = StoredByte(stored, start + i + 2, swappedBytePairs), cr = StoredByte(stored, start + i + 3, swappedBytePairs);
            output[o] = y1; output[o + 1] = cb; output[o + 2] = cr;
            output[o + 3] = y2; output[o + 4] = cb; output[o + 5] = cr;
        }
    }

    private static byte StoredByte(ReadOnlySpan<byte> stored, int position, bool swappedBytePairs) =>
        swappedBytePairs ? PairSwapped(stored, position) : stored[position];

    private static void SwapToLittleEndian(Span<byte> output, int unit)
    {
        for (int i = 0; i + unit <= output.Length; i += unit)
            output.Slice(i, unit).Reverse();
    }

    /// <summary>Keeps bits (HighBit-BitsStored, HighBit] as the value: overlays and garbage above it are not pixel data.</summary>
    private void Normalise(Span<byte> output)
    {
        int shift = HighBit + 1 - BitsStored;
        int unused = 32 - BitsStored;
        switch (BytesPerSample)
        {
            case 1:
                for (int i = 0; i < output.Length; i++) output[i] = (byte)Field(output[i]);
                break;
            case 2:
                for (int i = 0; i < output.Length; i += 2)
                    BinaryPrimitives.WriteUInt16LittleEndian(output[i..], (ushort)Field(BinaryPrimitives.ReadUInt16LittleEndian(output[i..])));
                break;
            default:
                for (int i = 0; i < output.Length; i += 4)
                    BinaryPrimitives.WriteUInt32LittleEndian(output[i..], Field(BinaryPrimitives.ReadUInt32LittleEndian(output[i..])));
                break;
        }

        uint Field(uint raw)
        {
            uint field = (raw >> shift) << unused;
            return IsSigned ? (uint)((int)field >> unused) : field >> unused;
        }
    }
}
