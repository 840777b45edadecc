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
        return ImageFormat.Unknown;
    }

    /// <summary>Whether a file name is one the folder walker should try (the content still decides).</summary>
    public static bool IsCandidateFile(string path)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return ext is ".png" or ".jpg" or ".jpeg";
    }

    public static PixelImage Decode(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.IsEmpty) throw new ImageDecodeException(source, "the file is empty (0 bytes)");
        var format = Detect(bytes);
        if (format == ImageFormat.Unknown)
            throw new ImageDecodeException(source, "not a PNG or JPEG image (unrecognised file signature)");
        return DecodeWithSkia(bytes, source, format);
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

public enum ImageFormat { Unknown, Png, Jpeg }
