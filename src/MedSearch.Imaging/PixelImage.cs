using SkiaSharp;

namespace MedSearch.Imaging;

/// <summary>
/// A decoded image as the pixel pipeline hands it to an encoder: display-ready intensities (after any
/// rescale, windowing or photometric conversion) in the 0..255 range, interleaved, 1 (grey) or 3 (RGB) channels.
/// Float rather than byte so that DICOM's 12/16-bit precision survives windowing until the encoder's own
/// resize and normalisation; <see cref="ToPreview"/> gives the 8-bit form, <see cref="ToThumbnailPng"/> a small PNG of it.
/// </summary>
public sealed class PixelImage
{
    public PixelImage(int width, int height, int channels, float[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}x{height} is not positive");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"{channels} channels: only grey (1) and RGB (3) are supported");
        if (pixels.Length != (long)width * height * channels)
            throw new ArgumentException($"pixel buffer holds {pixels.Length} values, {width}x{height}x{channels} needs {(long)width * height * channels}", nameof(pixels));
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }

    /// <summary>Interleaved (row-major, channel-last) intensities in 0..255.</summary>
    public float[] Pixels { get; }

    /// <summary>The 8-bit form of the same pixels (rounded and clamped), channel-last.</summary>
    public byte[] ToPreview()
    {
        var bytes = new byte[Pixels.Length];
        for (int i = 0; i < bytes.Length; i++)
            bytes[i] = (byte)Math.Clamp(MathF.Round(Pixels[i]), 0f, 255f);
        return bytes;
    }

    /// <summary>
    /// SHA-256 of the size, channel count and intensities: the same for two exact-duplicate images however their
    /// files differ (PNG vs DICOM, other compression), since it hashes what the encoder sees.
    /// </summary>
    public byte[] PixelSha256()
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        Span<int> shape = [Width, Height, Channels];
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(shape));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Pixels.AsSpan()));
        return hash.GetHashAndReset();
    }

    /// <summary>
    /// A small 8-bit PNG of the image for result lists: shrunk by averaging whole pixel blocks so that the longest
    /// side is at most <paramref name="maxSide"/> (a plain subsample would alias the fine texture radiologists
    /// look at), grey kept grey.
    /// </summary>
    public byte[] ToThumbnailPng(int maxSide = 128)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSide, 1);
        int step = (Math.Max(Width, Height) + maxSide - 1) / maxSide;
        int width = (Width + step - 1) / step, height = (Height + step - 1) / step;
        bool grey = Channels == 1;
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, grey ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque));
        var target = bitmap.GetPixelSpan();
        int outChannels = grey ? 1 : 4;
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            int y0 = y * step, y1 = Math.Min(y0 + step, Height), x0 = x * step, x1 = Math.Min(x0 + step, Width);
            int at = (y * width + x) * outChannels;
            for (int c = 0; c < Channels; c++)
            {
                float sum = 0;
                for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++)
                    sum += Pixels[(yy * Width + xx) * Channels + c];
                target[at + c] = (byte)Math.Clamp(MathF.Round(sum / ((y1 - y0) * (x1 - x0))), 0f, 255f);
            }
            if (!grey) target[at + 3] = 255;
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
