using System.Buffers.Binary;
using System.Runtime.InteropServices;
using MedSearch.Dicom.Codecs.Native;

namespace MedSearch.Dicom.Codecs;

/// <summary>
/// JPEG 2000 (Part 1, lossless and lossy) and High-Throughput JPEG 2000 (Part 15) through OpenJPEG 2.5 (Debian
/// package libopenjp2-7). Accepts a raw codestream or a JP2 file. Where the codestream applies the multiple-component
/// transform, OpenJPEG undoes it and the output is RGB.
/// </summary>
public sealed class Jpeg2000Decoder : IFrameDecoder
{
    private const string MissingLibrary = "JPEG 2000 needs OpenJPEG 2.5 or later (libopenjp2.so.7): apt-get install libopenjp2-7";

    private static ReadOnlySpan<byte> Jp2Signature => [0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A];
    private static ReadOnlySpan<byte> CodestreamStart => [0xFF, 0x4F, 0xFF, 0x51];

    public string Name => "JPEG 2000 / HTJ2K (OpenJPEG libopenjp2.so.7)";

    /// <summary>Where OpenJPEG reads from: the pinned frame. Lives on the decoding thread's stack for one call.</summary>
    private unsafe struct MemorySource
    {
        public byte* Data;
        public long Length;
        public long Position;
    }

    public unsafe string Decode(ReadOnlySpan<byte> compressed, in FrameFormat format, Span<byte> destination)
    {
        FrameOutput.Validate(format, destination.Length);
        int codecFormat = compressed.StartsWith(CodestreamStart) ? OpenJpeg.CodecJ2K
            : compressed.StartsWith(Jp2Signature) ? OpenJpeg.CodecJP2
            : throw new CodecException("Frame is neither a JPEG 2000 codestream (0xFF4FFF51) nor a JP2 file.");
        bool colourTransform = UsesColourTransform(codecFormat == OpenJpeg.CodecJP2 ? FindCodestream(compressed) : compressed);
        Span<byte> frame = destination[..(int)format.FrameBytes];

        var errors = new List<string>();
        GCHandle errorsHandle = GCHandle.Alloc(errors);
        nint stream = 0, codec = 0;
        OpenJpeg.Image* image = null;
        try
        {
            fixed (byte* data = compressed)
            {
                var source = new MemorySource { Data = data, Length = compressed.Length };
                try
                {
                    stream = OpenJpeg.StreamCreate((nuint)Math.Clamp(compressed.Length, 4096, 1 << 20), 1);
                    codec = OpenJpeg.CreateDecompress(codecFormat);
                    if (stream == 0 || codec == 0)
                        throw new CodecException("OpenJPEG could not create a decoder.");
                    OpenJpeg.StreamSetReadFunction(stream, &Read);
                    OpenJpeg.StreamSetSkipFunction(stream, &Skip);
                    OpenJpeg.StreamSetSeekFunction(stream, &Seek);
                    OpenJpeg.StreamSetUserData(stream, &source, 0);
                    OpenJpeg.StreamSetUserDataLength(stream, (ulong)compressed.Length);
                    OpenJpeg.SetErrorHandler(codec, &OnError, (void*)GCHandle.ToIntPtr(errorsHandle));

                    byte* parameters = stackalloc byte[OpenJpeg.DecoderParametersBytes];
                    new Span<byte>(parameters, OpenJpeg.DecoderParametersBytes).Clear();
                    OpenJpeg.SetDefaultDecoderParameters(parameters);
                    Check(OpenJpeg.SetupDecoder(codec, parameters), "setting up", errors);
                    Check(OpenJpeg.DecoderSetStrictMode(codec, 1), "enabling strict mode", errors);
                    // JPEG 2000 is by far the slowest syntax to decode (radiographs of 2-5k pixels a side); its
                    // code-blocks decode independently, so a query or a single large file uses every core. A build
                    // without thread support refuses, which costs only speed.
                    if (Environment.ProcessorCount > 1) OpenJpeg.CodecSetThreads(codec, Environment.ProcessorCount);
                }
                catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
                {
                    throw new CodecException(MissingLibrary, e);
                }

                Check(OpenJpeg.ReadHeader(stream, codec, &image), "reading the header", errors);
                CheckImage(image, format, decoded: false);
                Check(OpenJpeg.Decode(codec, stream, image), "decoding", errors);
                Check(OpenJpeg.EndDecompress(codec, stream), "finishing", errors);
                CheckImage(image, format, decoded: true);
                WriteSamples(image, format, frame);
            }
        }
        finally
        {
            if (image != null)
                OpenJpeg.ImageDestroy(image);
            if (stream != 0)
                OpenJpeg.StreamDestroy(stream);
            if (codec != 0)
                OpenJpeg.DestroyCodec(codec);
            errorsHandle.Free();
        }

        FrameOutput.SignExtend(frame, format);
        return colourTransform && format.SamplesPerPixel == 3 ? "RGB" : format.PhotometricInterpretation;
    }

    private static void Check(int ok, string step, List<string> errors)
    {
        if (ok == 0)
            throw new CodecException($"OpenJPEG failed {step}: {(errors.Count > 0 ? string.Join(" ", errors) : "no message")}.");
    }

    /// <summary>The header must describe exactly the frame the dataset declares, before OpenJPEG allocates for it.</summary>
    private static unsafe void CheckImage(OpenJpeg.Image* image, in FrameFormat format, bool decoded)
    {
        if (image == null || image->Components == null)
            throw new CodecException("OpenJPEG returned no image.");
        if (image->ComponentCount != format.SamplesPerPixel)
            throw new CodecException($"JPEG 2000 image has {image->ComponentCount} components, the dataset says SamplesPerPixel {format.SamplesPerPixel}.");
        for (int k = 0; k < format.SamplesPerPixel; k++)
        {
            OpenJpeg.ImageComponent* c = image->Components + k;
            if (c->Width != format.Columns || c->Height != format.Rows || c->Dx != 1 || c->Dy != 1)
                throw new CodecException(
                    $"JPEG 2000 component {k} is {c->Width}x{c->Height} (subsampled {c->Dx}x{c->Dy}), the dataset says {format.Columns}x{format.Rows}.");
            if (c->Precision is < 1 or > 32 || c->Precision > format.BytesPerSample * 8)
                throw new CodecException($"JPEG 2000 component {k} has {c->Precision}-bit samples, which do not fit BitsAllocated {format.BitsAllocated}.");
            if (decoded && c->Data == null)
                throw new CodecException($"OpenJPEG decoded no samples for component {k}.");
        }
    }

    private static unsafe void WriteSamples(OpenJpeg.Image* image, in FrameFormat format, Span<byte> frame)
    {
        int pixels = format.Rows * format.Columns;
        OpenJpeg.ImageComponent* c = image->Components;
        // FrameOutput.Validate admits 1 or 3 samples per pixel, and CheckImage matched the component count to it.
        if (format.SamplesPerPixel == 1)
            FrameOutput.Narrow(new ReadOnlySpan<int>(c[0].Data, pixels), frame, 0, format.BytesPerSample);
        else
            FrameOutput.Interleave(new ReadOnlySpan<int>(c[0].Data, pixels), new ReadOnlySpan<int>(c[1].Data, pixels),
                new ReadOnlySpan<int>(c[2].Data, pixels), frame, 0, format.BytesPerSample);
    }

    /// <summary>The contiguous codestream box (jp2c) of a JP2 file, or nothing if the boxes do not lead to one.</summary>
    private static ReadOnlySpan<byte> FindCodestream(ReadOnlySpan<byte> jp2)
    {
        int p = 0;
        while (p + 8 <= jp2.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(jp2[p..]);
            uint type = BinaryPrimitives.ReadUInt32BigEndian(jp2[(p + 4)..]);
            int header = 8;
            if (length == 1)
            {
                if (p + 16 > jp2.Length)
                    break;
                length = (long)BinaryPrimitives.ReadUInt64BigEndian(jp2[(p + 8)..]);
                header = 16;
            }
            else if (length == 0)
            {
                length = jp2.Length - p;
            }
            if (length < header || length > jp2.Length - p)
                break;
            if (type == 0x6A703263) // 'jp2c'
                return jp2.Slice(p + header, (int)length - header);
            p += (int)length;
        }
        return default;
    }

    /// <summary>
    /// Whether the main header's COD segment switches on the multiple-component transform (byte 4 of SGcod), which
    /// OpenJPEG undoes when decoding: the DICOM label for that is YBR_RCT/YBR_ICT, the output is RGB.
    /// </summary>
    private static bool UsesColourTransform(ReadOnlySpan<byte> codestream)
    {
        if (!codestream.StartsWith(CodestreamStart))
            return false;
        int p = 2;
        while (p + 4 <= codestream.Length)
        {
            int marker = BinaryPrimitives.ReadUInt16BigEndian(codestream[p..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(codestream[(p + 2)..]);
            if (marker == 0xFF90 || length < 2) // SOT ends the main header
                break;
            if (marker == 0xFF52)
                return length >= 7 && p + 8 < codestream.Length && codestream[p + 8] != 0;
            p += 2 + length;
        }
        return false;
    }

    [UnmanagedCallersOnly]
    private static unsafe nuint Read(void* buffer, nuint count, void* user)
    {
        var source = (MemorySource*)user;
        long left = source->Length - source->Position;
        if (left <= 0)
            return unchecked((nuint)(-1)); // OpenJPEG's end-of-stream value
        long n = count < (ulong)left ? (long)count : left;
        Buffer.MemoryCopy(source->Data + source->Position, buffer, n, n);
        source->Position += n;
        return (nuint)n;
    }

    [UnmanagedCallersOnly]
    private static unsafe long Skip(long count, void* user)
    {
        var source = (MemorySource*)user;
        long target = Math.Clamp(source->Position + count, 0, source->Length);
        long skipped = target - source->Position;
        source->Position = target;
        // A skip that cannot move would make OpenJPEG loop; -1 tells it the stream is exhausted.
        return skipped == 0 && count != 0 ? -1 : skipped;
    }

    [UnmanagedCallersOnly]
    private static unsafe int Seek(long offset, void* user)
    {
        var source = (MemorySource*)user;
        if (offset < 0 || offset > source->Length)
            return 0;
        source->Position = offset;
        return 1;
    }

    [UnmanagedCallersOnly]
    private static unsafe void OnError(byte* message, void* user)
    {
        if (GCHandle.FromIntPtr((nint)user).Target is List<string> { Count: < 8 } errors)
            errors.Add(Marshal.PtrToStringUTF8((nint)message)?.Trim() ?? "");
    }
}
