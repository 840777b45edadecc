using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using MedSearch.Dicom.Codecs.Jpeg;
using MedSearch.Dicom.Codecs.Native;

namespace MedSearch.Dicom.Codecs;

/// <summary>JPEG-LS lossless and near-lossless (ISO 14495-1) through CharLS 2 (Debian package libcharls2).</summary>
public sealed class JpegLsDecoder : IFrameDecoder
{
    public string Name => "JPEG-LS (CharLS libcharls.so.2)";

    public unsafe string Decode(ReadOnlySpan<byte> compressed, in FrameFormat format, Span<byte> destination)
    {
        FrameOutput.Validate(format, destination.Length);
        // CharLS 2.4 spends seconds on a cut-off multi-scan stream before failing; a missing EOI gives it away up front.
        if (!JpegSegmentReader.EndsWithEndOfImage(compressed))
            throw new CodecException("JPEG-LS stream is truncated: it does not end with an EOI marker (0xFFD9).");
        Span<byte> frame = destination[..(int)format.FrameBytes];

        nint decoder = Create();
        try
        {
            fixed (byte* source = compressed)
            {
                Check(CharLs.SetSourceBuffer(decoder, source, (nuint)compressed.Length), "setting the source");
                Check(CharLs.ReadHeader(decoder), "reading the header");
                CharLs.FrameInfo info;
                Check(CharLs.GetFrameInfo(decoder, &info), "reading the frame info");
                int interleave;
                Check(CharLs.GetInterleaveMode(decoder, &interleave), "reading the interleave mode");

                if (info.Width != format.Columns || info.Height != format.Rows)
                    throw new CodecException($"JPEG-LS frame is {info.Width}x{info.Height}, the dataset says {format.Columns}x{format.Rows}.");
                if (info.ComponentCount != format.SamplesPerPixel)
                    throw new CodecException($"JPEG-LS frame has {info.ComponentCount} components, the dataset says SamplesPerPixel {format.SamplesPerPixel}.");
                if (info.BitsPerSample is < 2 or > 16 || info.BitsPerSample > format.BytesPerSample * 8)
                    throw new CodecException($"JPEG-LS precision {info.BitsPerSample} bits does not fit BitsAllocated {format.BitsAllocated}.");

                int codecBytes = info.BitsPerSample <= 8 ? 1 : 2;
                long decodedBytes = (long)format.Rows * format.Columns * format.SamplesPerPixel * codecBytes;
                nuint needed;
                Check(CharLs.GetDestinationSize(decoder, 0, &needed), "sizing the destination");
                if (needed != (nuint)decodedBytes)
                    throw new CodecException($"CharLS wants {needed} bytes for a frame that decodes to {decodedBytes}.");

                // CharLS writes sample-interleaved output for line and sample interleaving, planes for none.
                bool planar = interleave == CharLs.InterleaveNone && format.SamplesPerPixel > 1;
                if (!planar && codecBytes == format.BytesPerSample)
                {
                    fixed (byte* target = frame)
                        Check(CharLs.DecodeToBuffer(decoder, target, needed, 0), "decoding");
                }
                else
                {
                    byte[] rented = ArrayPool<byte>.Shared.Rent((int)decodedBytes);
                    try
                    {
                        fixed (byte* target = rented)
                            Check(CharLs.DecodeToBuffer(decoder, target, needed, 0), "decoding");
                        Rearrange(rented.AsSpan(0, (int)decodedBytes), codecBytes, planar, format, frame);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(rented);
                    }
                }
            }
        }
        finally
        {
            CharLs.DecoderDestroy(decoder);
        }

        FrameOutput.SignExtend(frame, format);
        return format.PhotometricInterpretation;
    }

    private static nint Create()
    {
        nint decoder;
        try
        {
            decoder = CharLs.DecoderCreate();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new CodecException("JPEG-LS needs the CharLS library (libcharls.so.2): apt-get install libcharls2", e);
        }
        return decoder != 0 ? decoder : throw new CodecException("CharLS could not create a JPEG-LS decoder.");
    }

    private static void Check(int error, string step)
    {
        if (error != 0)
            throw new CodecException($"CharLS failed {step}: {Marshal.PtrToStringUTF8(CharLs.GetErrorMessage(error))} (charls_jpegls_errc {error}).");
    }

    /// <summary>Interleaves planar output and widens 8-bit samples into larger containers.</summary>
    private static void Rearrange(ReadOnlySpan<byte> decoded, int codecBytes, bool planar, in FrameFormat format, Span<byte> frame)
    {
        if (codecBytes == 1)
            Rearrange(decoded, planar, format, frame);
        else
            // CharLS writes 16-bit samples in host order, little-endian on linux-x64 (the only target).
            Rearrange(MemoryMarshal.Cast<byte, ushort>(decoded), planar, format, frame);
    }

    private static void Rearrange<T>(ReadOnlySpan<T> decoded, bool planar, in FrameFormat format, Span<byte> frame)
        where T : unmanaged, IBinaryInteger<T>
    {
        if (!planar)
        {
            // Already interleaved: only the sample width changes.
            FrameOutput.WriteStrided(decoded, frame, 0, 1, format.BytesPerSample);
            return;
        }
        int pixels = format.Rows * format.Columns;
        int components = format.SamplesPerPixel;
        for (int k = 0; k < components; k++)
            FrameOutput.WriteStrided(decoded.Slice(k * pixels, pixels), frame, k, components, format.BytesPerSample);
    }
}
