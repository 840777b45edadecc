using MedSearch.Imaging;
using SkiaSharp;
using Xunit;

namespace MedSearch.Imaging.Tests;

public class ImageReaderTests
{
    private static PixelImage Decode(ReadOnlyMemory<byte> bytes, string name) => ImageReader.Read(bytes, name).Frames.Single().Image;

    private static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format)
    {
        using var data = bitmap.Encode(format, 100);
        return data.ToArray();
    }

    private static SKBitmap Gradient(SKColorType type, int width = 40, int height = 30)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, type, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, type == SKColorType.Gray8
                    ? new SKColor((byte)(x * 6), (byte)(x * 6), (byte)(x * 6))
                    : new SKColor((byte)(x * 6), (byte)(y * 8), 77));
        return bitmap;
    }

    [Fact]
    public void Grey_png_decodes_to_one_channel_with_exact_values()
    {
        using var bitmap = Gradient(SKColorType.Gray8);
        var image = Decode(Encode(bitmap, SKEncodedImageFormat.Png), "grey.png");
        Assert.Equal((40, 30, 1), (image.Width, image.Height, image.Channels));
        Assert.Equal(0f, image.Pixels[0]);
        Assert.Equal(39 * 6f, image.Pixels[39]);
        Assert.Equal(image.Pixels[..40], image.Pixels[40..80]);
    }

    [Fact]
    public void Colour_png_keeps_three_channels_in_rgb_order()
    {
        using var bitmap = Gradient(SKColorType.Rgba8888);
        var image = Decode(Encode(bitmap, SKEncodedImageFormat.Png), "colour.png");
        Assert.Equal(3, image.Channels);
        int p = (5 * 40 + 7) * 3;
        Assert.Equal([42f, 40f, 77f], image.Pixels[p..(p + 3)]);
    }

    [Fact]
    public void Grey_content_saved_as_rgb_is_treated_as_grey()
    {
        using var grey = Gradient(SKColorType.Gray8);
        using var rgb = new SKBitmap(new SKImageInfo(40, 30, SKColorType.Rgba8888, SKAlphaType.Opaque));
        grey.CopyTo(rgb, SKColorType.Rgba8888);
        var fromGrey = Decode(Encode(grey, SKEncodedImageFormat.Png), "a.png");
        var fromRgb = Decode(Encode(rgb, SKEncodedImageFormat.Png), "b.png");
        Assert.Equal(1, fromRgb.Channels);
        Assert.Equal(fromGrey.Pixels, fromRgb.Pixels);
    }

    [Fact]
    public void Jpeg_decodes_close_to_its_source()
    {
        using var bitmap = Gradient(SKColorType.Gray8);
        var image = Decode(Encode(bitmap, SKEncodedImageFormat.Jpeg), "grey.jpg");
        Assert.Equal(ImageFormat.Jpeg, ImageReader.Detect(Encode(bitmap, SKEncodedImageFormat.Jpeg)));
        Assert.Equal(1, image.Channels);
        for (int x = 0; x < 40; x++) Assert.InRange(image.Pixels[5 * 40 + x], x * 6 - 4f, x * 6 + 4f);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Thumbnail_is_a_png_of_block_averages_at_most_128_pixels_long(int channels)
    {
        // 300x200: blocks of 3x3 give 100x67, the last row of blocks 2 pixels high.
        var pixels = new float[300 * 200 * channels];
        for (int y = 0; y < 200; y++)
        for (int x = 0; x < 300; x++)
        for (int c = 0; c < channels; c++)
            pixels[(y * 300 + x) * channels + c] = (x + 2 * y + 40 * c) % 256;
        var image = new PixelImage(300, 200, channels, pixels);

        var png = image.ToThumbnailPng();
        Assert.Equal(ImageFormat.Png, ImageReader.Detect(png));
        var thumbnail = Decode(png, "thumbnail.png");
        Assert.Equal((100, 67, channels), (thumbnail.Width, thumbnail.Height, thumbnail.Channels));
        foreach (var (blockX, blockY) in new[] { (0, 0), (37, 20), (99, 66) })
        for (int c = 0; c < channels; c++)
        {
            var block = from y in Enumerable.Range(blockY * 3, Math.Min(3, 200 - blockY * 3))
                        from x in Enumerable.Range(blockX * 3, 3)
                        select pixels[(y * 300 + x) * channels + c];
            Assert.Equal(MathF.Round(block.Average()), thumbnail.Pixels[(blockY * 100 + blockX) * channels + c]);
        }
    }

    [Fact]
    public void Preview_rounds_and_clamps_to_bytes()
    {
        var image = new PixelImage(4, 1, 1, [-3f, 0.4f, 127.5f, 300f]);
        Assert.Equal([0, 0, 128, 255], image.ToPreview());
    }

    [Theory]
    [InlineData(new byte[0], "the file is empty (0 bytes)")]
    [InlineData(new byte[] { (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o' }, "not a PNG, JPEG or DICOM image")]
    public void Non_images_are_refused_with_the_reason(byte[] bytes, string reason)
    {
        var e = Assert.ThrowsAny<ImageDecodeException>(() => Decode(bytes, "upload"));
        Assert.Equal("upload", e.Source);
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData(SKEncodedImageFormat.Png)]
    [InlineData(SKEncodedImageFormat.Jpeg)]
    public void Truncated_files_are_refused_not_half_decoded(SKEncodedImageFormat format)
    {
        using var bitmap = Gradient(SKColorType.Rgba8888, 200, 200);
        var bytes = Encode(bitmap, format);
        var e = Assert.Throws<ImageDecodeException>(() => Decode(bytes.AsMemory(0, bytes.Length * 2 / 3), "cut"));
        Assert.Contains("truncated", e.Reason);
    }

    [Fact]
    public void Pixel_image_checks_its_buffer()
    {
        Assert.Throws<ArgumentException>(() => new PixelImage(2, 2, 1, new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PixelImage(2, 2, 2, new float[8]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PixelImage(0, 2, 1, []));
    }
}
