using MedSearch.Imaging.Dicom;
using SkiaSharp;

namespace MedSearch.Imaging;

/// <summary>
/// The one entry point from file bytes to pixels, shared by indexing and querying so both prepare an image
/// the same way. Recognises formats by their signature, never by file name.
/// </summary>
public static class ImageReader
{
    /// <summary>Largest decoded image accepted (pixels), so a tiny compressed file cannot claim gigabytes.</summary>
    public const long MaxPixels = 100_000_000;

    private static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static ImageFormat Detect(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith(PngSignature)) return ImageFormat.Png;
        if (bytes.Length >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return ImageFormat.Jpeg;
        // DicomFile.Open's own first check, so that Detect and Open agree on which files start like DICOM.
        if (MedSearch.Dicom.DicomFile.HasSignature(bytes)) return ImageFormat.Dicom;
        return ImageFormat.Unknown;
    }

    /// <summary>Bytes enough for <see cref="Detect"/> to recognise every format.</summary>
    public const int SignatureLength = 132;

    /// <summary>Whether a file's name says it is an image, so that unreadable content is a failure rather than a skip.</summary>
    public static bool ClaimsToBeImage(string path)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return ext is ".png" or ".jpg" or ".jpeg" or ".dcm" or ".dicom";
    }

    /// <summary>
    /// Decodes a PNG, JPEG or DICOM file into the frames an encoder takes (for DICOM, the frames
    /// <see cref="ImageReadOptions.Frames"/> selects) and, for DICOM, the instance's header facts.
    /// </summary>
    /// <exception cref="NotAnImageException">The bytes are no image format, or a DICOM object without pixels.</exception>
    /// <exception cref="ImageDecodeException">The file is an image but cannot be decoded.</exception>
    public static ImageInput Read(ReadOnlyMemory<byte> bytes, string source, ImageReadOptions? options = null)
    {
        var opened = Open(bytes, source, options);
        var frames = new DecodedFrame[opened.FrameIndexes.Count];
        for (int i = 0; i < frames.Length; i++) frames[i] = opened.Decode(i);
        return new ImageInput(opened.Format, frames, opened.Dicom);
    }

    /// <summary>
    /// Reads the header of a PNG, JPEG or DICOM file and selects its frames (<see cref="ImageReadOptions.Frames"/>)
    /// without decoding them: <see cref="ImageFrames.Decode"/> decodes one at a time. A PNG or JPEG, one frame,
    /// is decoded here.
    /// </summary>
    /// <exception cref="NotAnImageException">The bytes are no image format, or a DICOM object without pixels.</exception>
    /// <exception cref="ImageDecodeException">The file is an image but its header cannot be read, or a PNG or JPEG cannot be decoded.</exception>
    public static ImageFrames Open(ReadOnlyMemory<byte> bytes, string source, ImageReadOptions? options = null)
    {
        if (bytes.IsEmpty) throw new ImageDecodeException(source, "the file is empty (0 bytes)");
        var format = Detect(bytes.Span);
        switch (format)
        {
            case ImageFormat.Dicom:
                return DicomImageReader.Open(bytes, source, options ?? ImageReadOptions.Default);
            case ImageFormat.Png or ImageFormat.Jpeg:
                var frame = new DecodedFrame(0, DecodeWithSkia(bytes.Span, source, format));
                return new ImageFrames(format, null, [0], _ => frame);
            default:
                const string reason = "not a PNG, JPEG or DICOM image (unrecognised file signature)";
                throw ClaimsToBeImage(source) ? new ImageDecodeException(source, reason) : new NotAnImageException(source, reason);
        }
    }

    /// <summary>The SOP Instance UID of a DICOM file from its header alone (no pixels decoded), or null when unreadable.</summary>
    public static string? PeekSopInstanceUid(ReadOnlyMemory<byte> bytes, string source)
    {
        try
        {
            return MedSearch.Dicom.DicomFile.Open(bytes, source).Dataset.GetString(MedSearch.Dicom.DicomTag.SopInstanceUid) is { Length: > 0 } uid ? uid : null;
        }
        catch (MedSearch.Dicom.DicomException)
        {
            return null;
        }
    }

    private static PixelImage DecodeWithSkia(ReadOnlySpan<byte> bytes, string source, ImageFormat format)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(new SKMemoryStream(data), out var result);
        if (codec is null)
            throw new ImageDecodeException(source, $"{format} header could not be read ({result})");
        var info = codec.Info;
        if ((long)info.Width * info.Height > MaxPixels)
            throw new ImageDecodeException(source, $"{info.Width}x{info.Height} exceeds the {MaxPixels:N0}-pixel limit");

        // Grey images stay single-channel so that the encoder's grey-to-channels rule applies, not Skia's.
        bool grey = info.ColorType == SKColorType.Gray8;
        var target = new SKImageInfo(info.Width, info.Height, grey ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(target);
        result = codec.GetPixels(target, bitmap.GetPixels());
        // A truncated file decodes partially with IncompleteInput: half an image must not be indexed as a case.
        if (result != SKCodecResult.Success)
            throw new ImageDecodeException(source, result == SKCodecResult.IncompleteInput
                ? $"{format} data is truncated (image incomplete)"
                : $"{format} data could not be decoded ({result})");

        var raw = bitmap.GetPixelSpan();
        int n = info.Width * info.Height;
        if (grey)
        {
            var pixels = new float[n];
            for (int i = 0; i < n; i++) pixels[i] = raw[i];
            return new PixelImage(info.Width, info.Height, 1, pixels);
        }

        var rgb = new float[n * 3];
        bool allGrey = true;
        for (int i = 0, o = 0; i < n; i++, o += 3)
        {
            byte r = raw[i * 4], g = raw[i * 4 + 1], b = raw[i * 4 + 2];
            rgb[o] = r; rgb[o + 1] = g; rgb[o + 2] = b;
            allGrey &= r == g && g == b;
        }
        if (!allGrey) return new PixelImage(info.Width, info.Height, 3, rgb);

        // Many grey radiographs are saved as RGB PNG/JPEG; treat them as grey so they embed like their grey twins.
        var mono = new float[n];
        for (int i = 0; i < n; i++) mono[i] = rgb[i * 3];
        return new PixelImage(info.Width, info.Height, 1, mono);
    }
}

public enum ImageFormat { Unknown, Png, Jpeg, Dicom }
