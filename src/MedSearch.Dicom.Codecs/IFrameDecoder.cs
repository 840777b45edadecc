namespace MedSearch.Dicom.Codecs;

/// <summary>The Image Pixel module facts a decoder needs about the frame it is given.</summary>
public readonly record struct FrameFormat(
    int Rows,
    int Columns,
    int SamplesPerPixel,
    int BitsAllocated,
    int BitsStored,
    bool Signed,
    string PhotometricInterpretation)
{
    public int BytesPerSample => BitsAllocated <= 8 ? 1 : BitsAllocated <= 16 ? 2 : 4;
    public long FrameBytes => (long)Rows * Columns * SamplesPerPixel * BytesPerSample;
}

/// <summary>
/// Decodes one compressed frame. Output contract, the same for every codec so that the pixel pipeline has one
/// input form: samples little-endian, <see cref="FrameFormat.BytesPerSample"/> bytes each, interleaved
/// (R,G,B,R,G,B… for colour), exactly <see cref="FrameFormat.FrameBytes"/> bytes written to the destination.
/// Values are the stored values (not rescaled); signed data is sign-extended to the full sample width.
/// </summary>
public interface IFrameDecoder
{
    /// <summary>For messages: which implementation (and native library) decodes.</summary>
    string Name { get; }

    /// <returns>The photometric interpretation of the output: the input's, or "RGB" when the codestream's
    /// colour transform was undone by the decoder (as JPEG 2000 and libjpeg-style decoders do).</returns>
    /// <exception cref="CodecException">Corrupt or unsupported codestream, or a missing native library.</exception>
    string Decode(ReadOnlySpan<byte> compressed, in FrameFormat format, Span<byte> destination);
}

/// <summary>A frame could not be decoded; the message says why (and, for a missing native library, which apt package to install).</summary>
public sealed class CodecException(string message, Exception? inner = null) : Exception(message, inner);
