using System.Buffers.Binary;
using System.Globalization;
using MedSearch.Dicom.Tests;
using Xunit;

namespace MedSearch.Imaging.Tests;

/// <summary>
/// The fast paths of the pixel pipeline against the definitions they replace: grey 8/16-bit frames go through a table
/// of their distinct stored values (the stretch's percentiles from a histogram of them), 32-bit frames pixel by
/// pixel; both must give the values of sorting every pixel, bit for bit. Also: only the selected frame is decoded.
/// </summary>
public sealed class PixelPipelineTableTests
{
    private const string ExplicitLE = "1.2.840.10008.1.2.1";
    private const string RleLossless = "1.2.840.10008.1.2.5";

    private static PixelImage Render(DicomBuilder dataset, string transferSyntax = ExplicitLE, FrameSelection frames = FrameSelection.Middle) =>
        Assert.Single(ImageReader.Read(DicomBuilder.Part10(transferSyntax, dataset.ToArray()), "synthetic.dcm",
            new ImageReadOptions { Frames = frames }).Frames).Image;

    private static string Ds(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static byte[] Samples(int[] stored, int bytes)
    {
        var samples = new byte[stored.Length * bytes];
        for (int i = 0; i < stored.Length; i++)
        {
            if (bytes == 2) BinaryPrimitives.WriteInt16LittleEndian(samples.AsSpan(i * 2), (short)stored[i]);
            else BinaryPrimitives.WriteInt32LittleEndian(samples.AsSpan(i * 4), stored[i]);
        }
        return samples;
    }

    /// <summary>
    /// The stretch as PixelPipeline defines it, written out per pixel: padding black, rescale in double, the
    /// nearest-rank 1st and 99th percentiles of the sorted values, clamp, MONOCHROME1 inverted.
    /// </summary>
    private static float[] Reference(int[] stored, int? padding, double slope, double intercept, bool invert)
    {
        var values = stored.Select(s => s == padding ? float.NaN : slope == 1 && intercept == 0 ? s : (float)((float)s * slope + intercept)).ToArray();
        var sorted = values.Where(v => !float.IsNaN(v)).Order().ToArray();
        float low = sorted[(int)Math.Round(0.01 * (sorted.Length - 1))], high = sorted[(int)Math.Round(0.99 * (sorted.Length - 1))];
        if (high <= low) (low, high) = (sorted[0], sorted[^1]);
        float scale = high > low ? 255f / (high - low) : 0f;
        return values.Select(v =>
        {
            if (float.IsNaN(v)) return 0f;
            float o = Math.Clamp((v - low) * scale, 0f, 255f);
            return invert ? 255f - o : o;
        }).ToArray();
    }

    [Theory]
    // Whole values (percentiles by counting), unsigned 12-bit CR and signed CT in HU.
    [InlineData(false, 1.0, 0.0, "MONOCHROME2")]
    [InlineData(true, 1.0, -1024.0, "MONOCHROME2")]
    // A fractional rescale (percentiles by sorting), and a negative slope, which reverses the stored values' order.
    [InlineData(false, 0.37, 3.5, "MONOCHROME1")]
    [InlineData(true, -2.0, 100.0, "MONOCHROME1")]
    public void Stretch_through_a_table_of_stored_values_equals_sorting_every_pixel(bool signed, double slope, double intercept, string photometric)
    {
        // 64×64 random values with padding well below them, so that the table holds values no pixel has on both
        // sides of the padding; a few hot pixels that the percentiles must ignore.
        var random = new Random(20261128);
        int padding = signed ? -2000 : 0;
        var stored = Enumerable.Range(0, 64 * 64).Select(i =>
            i % 10 == 0 ? padding : i % 97 == 0 ? (signed ? 2047 : 4095) : signed ? random.Next(-1000, 1001) : random.Next(1000, 3001)).ToArray();
        var expected = Reference(stored, padding, slope, intercept, photometric == "MONOCHROME1");

        foreach (int bits in new[] { 16, 32 })
        {
            var b = new DicomBuilder().SopIdentity().ImagePixel(64, 64, (ushort)bits, 1, photometric, 1, 12, (ushort)(signed ? 1 : 0));
            var paddingWord = new byte[2];
            BinaryPrimitives.WriteInt16LittleEndian(paddingWord, (short)padding);
            b.Element(0x0028, 0x0120, signed ? "SS" : "US", paddingWord)
                .String(0x0028, 0x1052, "DS", Ds(intercept)).String(0x0028, 0x1053, "DS", Ds(slope));
            var image = Render(b.NativePixelData(Samples(stored, bits / 8), bits));
            Assert.Equal(expected, image.Pixels);
        }
    }

    [Fact]
    public void A_window_through_the_table_equals_the_window_per_pixel()
    {
        // The same stored values as 16-bit samples (table) and 32-bit samples (per pixel) under a LINEAR window.
        var random = new Random(7);
        var stored = Enumerable.Range(0, 50 * 40).Select(_ => random.Next(-2048, 2048)).ToArray();
        PixelImage Windowed(int bits) => Render(new DicomBuilder().SopIdentity()
            .ImagePixel(40, 50, (ushort)bits, 1, "MONOCHROME2", 1, 12, 1)
            .String(0x0028, 0x1050, "DS", "40").String(0x0028, 0x1051, "DS", "400")
            .String(0x0028, 0x1052, "DS", "-24").String(0x0028, 0x1053, "DS", "1.5")
            .NativePixelData(Samples(stored, bits / 8), bits));
        var table = Windowed(16).Pixels;
        Assert.Equal(Windowed(32).Pixels, table);
        Assert.Contains(0f, table);
        Assert.Contains(255f, table);
        Assert.Contains(table, v => v is > 0 and < 255);
    }

    /// <summary>One RLE frame of 8-bit grey: the 64-byte header naming one segment, then the bytes as one literal run.</summary>
    private static byte[] RleFrame(byte[] pixels)
    {
        var frame = new byte[64 + 1 + pixels.Length + (pixels.Length + 1) % 2];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(4), 64);
        frame[64] = (byte)(pixels.Length - 1);
        pixels.CopyTo(frame, 65);
        return frame;
    }

    [Fact]
    public void Only_the_selected_frame_is_decoded()
    {
        // Three RLE frames of which only the middle one is valid: the middle frame reads, with its own pixels, and
        // reading every frame fails on the others; so the default read never touched them.
        var broken = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(broken, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(broken.AsSpan(4), 4096);
        DicomBuilder File()
        {
            var b = new DicomBuilder().SopIdentity().ImagePixel(2, 2, 8, 1, "MONOCHROME2", 3)
                .String(0x0028, 0x1050, "DS", "128").String(0x0028, 0x1051, "DS", "256")
                .Header(0x7FE0, 0x0010, "OB", DicomBuilder.Undefined).Item(0xE000, 0);
            foreach (var fragment in new[] { broken, RleFrame([10, 60, 110, 160]), broken })
                b.Item(0xE000, (uint)fragment.Length).Raw(fragment);
            return b.Item(0xE0DD, 0);
        }

        var middle = Render(File(), RleLossless);
        Assert.Equal([10f, 60f, 110f, 160f], middle.Pixels);
        var error = Assert.Throws<ImageDecodeException>(() => Render(File(), RleLossless, FrameSelection.All));
        Assert.Contains("RLE", error.Reason);
    }

    [Fact]
    public void Rgb_8_bit_samples_are_the_display_values_masked_to_bits_stored()
    {
        // 40 values, more than a vector's worth, so that both the vector loop and the tail are used.
        var samples = Enumerable.Range(0, 40 * 3).Select(i => (byte)(i * 37)).ToArray();
        var full = Render(new DicomBuilder().SopIdentity().ImagePixel(1, 40, 8, 3, "RGB").NativePixelData(samples, 8));
        Assert.Equal(samples.Select(v => (float)v), full.Pixels);
        var seven = Render(new DicomBuilder().SopIdentity().ImagePixel(1, 40, 8, 3, "RGB", 1, 7).NativePixelData(samples, 8));
        Assert.Equal(samples.Select(v => (float)(v & 0x7F)), seven.Pixels);
    }
}
