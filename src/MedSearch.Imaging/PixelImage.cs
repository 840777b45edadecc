namespace MedSearch.Imaging;

/// <summary>
/// A decoded image as the pixel pipeline hands it to an encoder: display-ready intensities (after any
/// rescale, windowing or photometric conversion) in the 0..255 range, interleaved, 1 (grey) or 3 (RGB) channels.
/// Float rather than byte so that DICOM's 12/16-bit precision survives windowing until the encoder's own
/// resize and normalisation; <see cref="ToPreview"/> gives the 8-bit form for thumbnails.
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
}
