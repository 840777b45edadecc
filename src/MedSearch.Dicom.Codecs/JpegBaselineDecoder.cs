using JpegLibrary;
using MedSearch.Dicom.Codecs.Jpeg;

namespace MedSearch.Dicom.Codecs;

/// <summary>
/// JPEG baseline (8-bit) and extended (12-bit) DCT through our own sequential decoder (<see cref="JpegDctDecoder"/>,
/// libjpeg's islow IDCT), progressive through JpegLibrary (float IDCT), with libjpeg's colour handling: YCbCr is
/// converted to RGB, after libjpeg-style fancy upsampling of subsampled chroma. Sequential frames come out as the
/// libjpeg of GDCM and DCMTK decodes them; progressive ones within a few levels.
/// </summary>
public sealed class JpegBaselineDecoder : IFrameDecoder
{
    public string Name => "JPEG baseline/extended (managed), progressive (JpegLibrary)";

    public unsafe string Decode(ReadOnlySpan<byte> compressed, in FrameFormat format, Span<byte> destination)
    {
        FrameOutput.Validate(format, destination.Length);
        JpegFrame header = JpegFrame.ReadHeader(compressed);
        if (header.Marker == 0xC3)
            // A lossless stream under a lossy transfer syntax: decode what is there rather than refuse it.
            return new JpegLosslessDecoder().Decode(compressed, format, destination);
        if (header.Marker is not (0xC0 or 0xC1 or 0xC2))
            throw new CodecException($"JPEG process SOF{header.Marker - 0xC0} is not supported (baseline, extended or progressive Huffman only).");
        header.CheckAgainst(format);
        if (header.Precision is not (8 or 12))
            throw new CodecException($"DCT JPEG precision {header.Precision} is not supported (8 or 12).");
        bool progressive = header.Marker == 0xC2;
        if (progressive)
        {
            CheckSampling(header);
            // JpegLibrary decodes a cut-off stream as if the missing data were zeros; the missing EOI is the sign of it.
            if (!JpegSegmentReader.EndsWithEndOfImage(compressed))
                throw new CodecException("JPEG stream is truncated: it does not end with an EOI marker (0xFFD9).");
        }

        bool toRgb = ConvertsToRgb(header, format.PhotometricInterpretation);
        Span<byte> frame = destination[..(int)format.FrameBytes];
        if (header.Components.Length == 1)
        {
            // Our decoder writes every sample, but only the low 16 bits of 4-byte ones; JpegLibrary may skip blocks.
            if (progressive || format.BytesPerSample == 4)
                frame.Clear();
            fixed (byte* output = frame)
            {
                var target = new JpegSampleTarget(output, header.SamplesPerLine, header.Lines, format.BytesPerSample);
                if (progressive)
                    DecodeProgressive(compressed, header, new JpegGreyOutput(target, header.Precision));
                else
                    JpegDctDecoder.Decode(compressed, header, [target]);
            }
        }
        else
        {
            using var planes = new JpegPlanes(header);
            if (progressive)
                DecodeProgressive(compressed, header, planes);
            else
                JpegDctDecoder.Decode(compressed, header, [planes.Target(0), planes.Target(1), planes.Target(2)]);
            planes.WriteTo(frame, toRgb, format.BytesPerSample);
        }
        FrameOutput.SignExtend(frame, format);
        return toRgb || DeclaresRgb(header) ? "RGB" : format.PhotometricInterpretation;
    }

    private static unsafe void DecodeProgressive(ReadOnlySpan<byte> compressed, JpegFrame header, JpegBlockOutputWriter output)
    {
        try
        {
            fixed (byte* input = compressed)
            {
                using var memory = new PinnedMemory(input, compressed.Length);
                var decoder = new JpegDecoder();
                decoder.SetInput(memory.Memory);
                decoder.SetOutputWriter(output);
                // No Identify() first: it walks the whole entropy-coded stream for markers, which Decode does again.
                // The writers drop blocks outside the frame they were built for, so a frame header that JpegLibrary
                // reads differently can do no harm before this check fails.
                decoder.Decode();
                if (decoder.Width != header.SamplesPerLine || decoder.Height != header.Lines || decoder.NumberOfComponents != header.Components.Length)
                    throw new CodecException($"JpegLibrary reads the frame as {decoder.Width}x{decoder.Height}x{decoder.NumberOfComponents}, not as its header says.");
            }
        }
        catch (Exception e) when (e is not (CodecException or OutOfMemoryException))
        {
            // JpegLibrary reports damage with whatever exception its parser hits first; to callers it is one failure.
            throw new CodecException($"JpegLibrary could not decode the JPEG stream: {e.Message}", e);
        }
    }

    /// <summary>JpegLibrary upsamples by shifting, so every ratio of the largest sampling factor to a component's must be 1, 2 or 4.</summary>
    private static void CheckSampling(JpegFrame header)
    {
        int maxH = header.MaxHorizontal, maxV = header.MaxVertical;
        foreach (JpegComponent c in header.Components)
        {
            if (maxH % c.Horizontal != 0 || maxV % c.Vertical != 0 || (maxH / c.Horizontal) is 3 || (maxV / c.Vertical) is 3)
                throw new CodecException($"JPEG component {c.Id} is sampled {c.Horizontal}x{c.Vertical} against a maximum of {maxH}x{maxV}; only ratios 1, 2 and 4 are supported.");
        }
    }

    /// <summary>
    /// Whether the three components are YCbCr that libjpeg-based reference decoders (GDCM, DCMTK) turn into RGB. The
    /// codestream decides first, in libjpeg's order: JFIF means YCbCr, an Adobe marker means YCbCr unless its transform
    /// is 0. Without either the dataset decides (YBR_FULL, YBR_FULL_422): RGB-labelled data is left alone, as DCMTK
    /// does, whatever the component ids suggest.
    /// </summary>
    private static bool ConvertsToRgb(JpegFrame header, string photometric)
    {
        if (header.Components.Length != 3)
            return false;
        if (header.Jfif)
            return true;
        if (header.AdobeTransform >= 0)
            return header.AdobeTransform != 0;
        return photometric.Trim() is "YBR_FULL" or "YBR_FULL_422";
    }

    /// <summary>An Adobe marker with transform 0 (and no JFIF) says the stream holds RGB whatever the dataset claims.</summary>
    private static bool DeclaresRgb(JpegFrame header) =>
        header.Components.Length == 3 && !header.Jfif && header.AdobeTransform == 0;
}
