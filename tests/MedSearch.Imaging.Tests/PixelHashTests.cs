using MedSearch.Imaging;
using SkiaSharp;
using Xunit;

namespace MedSearch.Imaging.Tests;

public class PixelHashTests
{
    private const int Width = 37, Height = 23;

    private static PixelImage Decode(byte[] bytes, string name) => ImageReader.Read(bytes, name).Frames.Single().Image;

    /// <summary>Grey pixels with enough structure that compression levels produce different files.</summary>
    private static SKBitmap Grey(int width = Width, int height = Height, Action<SKBitmap>? edit = null)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                byte v = (byte)((x * 7 + y * 13 + x * y) % 256);
                bitmap.SetPixel(x, y, new SKColor(v, v, v));
            }
        edit?.Invoke(bitmap);
        return bitmap;
    }

    private static byte[] Png(SKBitmap bitmap, SKPngEncoderFilterFlags filters, int zlibLevel)
    {
        using var pixmap = bitmap.PeekPixels();
        using var data = pixmap.Encode(new SKPngEncoderOptions(filters, zlibLevel)) ?? throw new InvalidOperationException("PNG encoding failed");
        return data.ToArray();
    }

    [Fact]
    public void Same_pixels_in_differently_compressed_pngs_hash_the_same()
    {
        using var bitmap = Grey();
        var fast = Png(bitmap, SKPngEncoderFilterFlags.NoFilters, 0);
        var small = Png(bitmap, SKPngEncoderFilterFlags.AllFilters, 9);
        Assert.NotEqual(fast, small); // the files really differ

        var a = Decode(fast, "fast.png");
        var b = Decode(small, "small.png");
        Assert.Equal(a.Pixels, b.Pixels);
        Assert.Equal(32, a.PixelSha256().Length);
        Assert.Equal(a.PixelSha256(), b.PixelSha256());
    }

    [Fact]
    public void Grey_png_and_grey_content_saved_as_rgb_hash_the_same()
    {
        using var grey = Grey();
        using var rgb = new SKBitmap(new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        Assert.True(grey.CopyTo(rgb, SKColorType.Rgba8888));
        using var rgbData = rgb.Encode(SKEncodedImageFormat.Png, 100);

        var fromGrey = Decode(Png(grey, SKPngEncoderFilterFlags.AllFilters, 6), "grey.png");
        var fromRgb = Decode(rgbData.ToArray(), "rgb.png");
        Assert.Equal(1, fromRgb.Channels);
        Assert.Equal(fromGrey.PixelSha256(), fromRgb.PixelSha256());
    }

    [Fact]
    public void Hash_is_deterministic_and_one_changed_pixel_changes_it()
    {
        using var original = Grey();
        using var changed = Grey(edit: b =>
        {
            var old = b.GetPixel(20, 11).Red;
            byte v = (byte)(old + 1);
            b.SetPixel(20, 11, new SKColor(v, v, v));
        });
        var a = Decode(Png(original, SKPngEncoderFilterFlags.AllFilters, 6), "a.png");
        var again = Decode(Png(original, SKPngEncoderFilterFlags.AllFilters, 6), "a.png");
        var b = Decode(Png(changed, SKPngEncoderFilterFlags.AllFilters, 6), "b.png");

        Assert.Equal(a.PixelSha256(), again.PixelSha256());
        Assert.Equal(1, a.Pixels.Zip(b.Pixels).Count(p => p.First != p.Second));
        Assert.NotEqual(a.PixelSha256(), b.PixelSha256());
    }

    [Fact]
    public void Same_values_in_transposed_shape_hash_differently()
    {
        var values = Enumerable.Range(0, 6 * 4).Select(i => (float)(i * 10 % 256)).ToArray();
        var wide = new PixelImage(6, 4, 1, values);
        var tall = new PixelImage(4, 6, 1, (float[])values.Clone());
        Assert.Equal(wide.Pixels, tall.Pixels);
        Assert.NotEqual(wide.PixelSha256(), tall.PixelSha256());
        Assert.Equal(wide.PixelSha256(), new PixelImage(6, 4, 1, (float[])values.Clone()).PixelSha256());
    }

    [Fact]
    public void Transposed_png_dimensions_hash_differently()
    {
        // 37×23 and 23×37 with the same row-major byte sequence.
        using var wide = Grey(Width, Height);
        using var tall = new SKBitmap(new SKImageInfo(Height, Width, SKColorType.Gray8, SKAlphaType.Opaque));
        wide.Bytes.AsSpan().CopyTo(tall.GetPixelSpan());
        tall.NotifyPixelsChanged();

        var a = Decode(Png(wide, SKPngEncoderFilterFlags.AllFilters, 6), "wide.png");
        var b = Decode(Png(tall, SKPngEncoderFilterFlags.AllFilters, 6), "tall.png");
        Assert.Equal((Width, Height), (a.Width, a.Height));
        Assert.Equal((Height, Width), (b.Width, b.Height));
        Assert.Equal(a.Pixels, b.Pixels);
        Assert.NotEqual(a.PixelSha256(), b.PixelSha256());
    }

    [Fact]
    public void Grey_and_colour_with_the_same_values_hash_differently()
    {
        // Three grey pixels vs one RGB pixel: same float sequence, different channel count.
        float[] values = [10, 20, 30];
        Assert.NotEqual(new PixelImage(3, 1, 1, values).PixelSha256(), new PixelImage(1, 1, 3, values).PixelSha256());
    }
}
