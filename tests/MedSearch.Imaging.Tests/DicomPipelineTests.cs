using System.Buffers.Binary;
using System.Globalization;
using MedSearch.Dicom.Tests;
using MedSearch.Tests.Support;
using SkiaSharp;
using Xunit;
using Xunit.Abstractions;

namespace MedSearch.Imaging.Tests;

/// <summary>
/// The pixel pipeline (Modality LUT, VOI window or percentile stretch, MONOCHROME1, PALETTE COLOR, YBR_FULL, frame
/// selection) on synthetic files whose right answers are worked out by hand from PS3.3, then real corpus files.
/// </summary>
public sealed class DicomPipelineTests(ITestOutputHelper output)
{
    private const string ExplicitLE = "1.2.840.10008.1.2.1";
    private const float Exact = 1e-3f;

    private static ImageInput Read(DicomBuilder dataset, FrameSelection frames = FrameSelection.Middle) =>
        ImageReader.Read(DicomBuilder.Part10(ExplicitLE, dataset.ToArray()), "synthetic.dcm", new ImageReadOptions { Frames = frames });

    private static PixelImage Single(DicomBuilder dataset) => Assert.Single(Read(dataset).Frames).Image;

    /// <summary>Identity, Image Pixel module; the caller adds the 0028,1xxx attributes, sequences and pixel data in tag order.</summary>
    private static DicomBuilder Image(int rows, int columns, int bitsAllocated, string photometric = "MONOCHROME2", int samples = 1,
        int frames = 1, int bitsStored = 0, bool signed = false) =>
        new DicomBuilder().SopIdentity().ImagePixel((ushort)rows, (ushort)columns, (ushort)bitsAllocated, (ushort)samples, photometric,
            frames, (ushort)bitsStored, (ushort)(signed ? 1 : 0));

    private static byte[] Words(params int[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), (ushort)values[i]);
        return bytes;
    }

    private static string Ds(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static DicomBuilder Window(DicomBuilder b, double center, double width, string? function = null)
    {
        b.String(0x0028, 0x1050, "DS", Ds(center)).String(0x0028, 0x1051, "DS", Ds(width));
        return function is null ? b : b.String(0x0028, 0x1056, "CS", function);
    }

    private static DicomBuilder Rescale(DicomBuilder b, double intercept, double slope) =>
        b.String(0x0028, 0x1052, "DS", Ds(intercept)).String(0x0028, 0x1053, "DS", Ds(slope));

    /// <summary>A sequence of undefined length whose items (also of undefined length) the callbacks write.</summary>
    private static DicomBuilder Sequence(DicomBuilder b, ushort group, ushort element, params Action<DicomBuilder>[] items)
    {
        b.Header(group, element, "SQ", DicomBuilder.Undefined);
        foreach (var item in items)
        {
            b.Item(0xE000, DicomBuilder.Undefined);
            item(b);
            b.Item(0xE00D, 0);
        }
        return b.Item(0xE0DD, 0);
    }

    private static void Near(float[] expected, float[] actual, float tolerance = Exact)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"value {i}: expected {expected[i]}, got {actual[i]} (all: {string.Join(", ", actual)})");
    }

    // PS3.3 C.11.2.1.2.1, c = 100, w = 51: below c - 0.5 - (w-1)/2 = 74.5 is 0, above c - 0.5 + (w-1)/2 = 124.5 is 255,
    // between them ((x - 99.5) / 50 + 0.5) × 255: 75 → 2.55, 99 → 124.95, 100 → 130.05, 124 → 252.45.
    private static readonly int[] WindowInput = [0, 74, 75, 99, 100, 124, 125, 1000];
    private static readonly float[] WindowOutput = [0, 0, 2.55f, 124.95f, 130.05f, 252.45f, 255, 255];

    [Fact]
    public void Linear_window_follows_the_formula_of_PS3_3_C_11_2_1_2_1()
    {
        var image = Single(Window(Image(1, WindowInput.Length, 16), 100, 51).NativePixelData(Words(WindowInput), 16));
        Assert.Equal(1, image.Channels);
        Near(WindowOutput, image.Pixels);
    }

    [Fact]
    public void Monochrome1_is_the_same_window_inverted()
    {
        var image = Single(Window(Image(1, WindowInput.Length, 16, "MONOCHROME1"), 100, 51).NativePixelData(Words(WindowInput), 16));
        Near([.. WindowOutput.Select(v => 255 - v)], image.Pixels);
    }

    [Fact]
    public void Linear_exact_and_sigmoid_windows_follow_their_formulas()
    {
        // LINEAR_EXACT, c = 100, w = 50: below 75 is 0, above 125 is 255, between ((x - 100) / 50 + 0.5) × 255.
        var exact = Single(Window(Image(1, 4, 16), 100, 50, "LINEAR_EXACT").NativePixelData(Words(75, 76, 100, 126), 16));
        Near([0, 5.1f, 127.5f, 255], exact.Pixels);
        // SIGMOID, c = 100, w = 50: 255 / (1 + exp(-4 (x - 100) / 50)); x = 100 → 127.5, x = 75 → 255 / (1 + e^2) = 30.397,
        // x = 125 → 255 / (1 + e^-2) = 224.603.
        var sigmoid = Single(Window(Image(1, 3, 16), 100, 50, "SIGMOID").NativePixelData(Words(75, 100, 125), 16));
        Near([30.397f, 127.5f, 224.603f], sigmoid.Pixels);
    }

    [Fact]
    public void Rescale_to_hounsfield_units_comes_before_the_window()
    {
        // CT: 12 stored bits 0..4095, intercept -1024, soft-tissue window 40/400. In HU the window's edges are
        // 40 - 0.5 ∓ 199.5 = -160 and 239: stored 864 (-160 HU) is 0, 865 (-159 HU) is ((-159 - 39.5) / 399 + 0.5) × 255
        // = 0.639, 1064 (40 HU) is 127.82, 1263 (239 HU) is 255. Windowing stored values instead would make 1064 white.
        int[] stored = [0, 864, 865, 1064, 1263, 1264, 4095];
        var ct = Image(1, stored.Length, 16, bitsStored: 12);
        var image = Single(Rescale(Window(ct, 40, 400), -1024, 1).NativePixelData(Words(stored), 16));
        Near([0, 0, 0.6391f, 127.8195f, 255, 255, 255], image.Pixels);

        // The slope as well: with slope 2, stored 532 is 40 HU again and 700 is 376 HU, above the window.
        var sloped = Single(Rescale(Window(Image(1, 2, 16, bitsStored: 12), 40, 400), -1024, 2).NativePixelData(Words(532, 700), 16));
        Near([127.8195f, 255], sloped.Pixels);
    }

    [Fact]
    public void Without_a_window_the_1st_to_99th_percentile_is_stretched()
    {
        // 10,000 pixels: 0..9899 once each and 100 hot pixels at 65535 (1%). Nearest-rank percentiles: index
        // round(0.01 × 9999) = 100 holds 100, index round(0.99 × 9999) = 9899 holds 9899; so x → (x - 100) × 255 / 9799,
        // clamped, and the hot pixels do not move the stretch.
        var values = Enumerable.Range(0, 10_000).Select(i => i < 9900 ? i : 65535).ToArray();
        var image = Single(Image(100, 100, 16).NativePixelData(Words(values), 16));
        Near([0, 0, 63.7305f, 127.5130f, 255, 255], [image.Pixels[0], image.Pixels[100], image.Pixels[2549], image.Pixels[5000], image.Pixels[9899], image.Pixels[9999]]);
    }

    [Theory]
    [InlineData("MONOCHROME2", 129.403f)]
    [InlineData("MONOCHROME1", 125.597f)]
    public void Pixel_padding_takes_no_part_in_the_stretch_and_shows_black(string photometric, float middle)
    {
        // A round CT field of view: 30 of 100 pixels are padding (stored -2000), the other 70 hold 0..69, intercept
        // -1024. Over the 70: index round(0.01 × 69) = 1 and round(0.99 × 69) = 68, so stored x → (x - 1) × 255 / 67:
        // 35 → 129.403. Counting the padding, -2000 would be the 1st percentile and the patient nearly white.
        var stored = Enumerable.Range(0, 100).Select(i => i < 30 ? -2000 : i - 30).ToArray();
        var b = Image(10, 10, 16, photometric, signed: true).Element(0x0028, 0x0120, "SS", Words(-2000));
        var image = Single(Rescale(b, -1024, 1).NativePixelData(Words(stored), 16));
        Assert.All(image.Pixels[..30], v => Assert.Equal(0f, v));
        Near([middle], [image.Pixels[30 + 35]]);
    }

    [Fact]
    public void Pixel_padding_range_limit_marks_a_range_of_stored_values()
    {
        // Padding 0..9 (Pixel Padding Value 9, Range Limit 0: either order is allowed), then 10..109 once each:
        // the stretch runs from index round(0.01 × 99) = 1 → 11 to index round(0.99 × 99) = 98 → 108.
        var stored = Enumerable.Range(0, 110).ToArray();
        var b = Image(1, 110, 16).Element(0x0028, 0x0120, "US", Words(9)).Element(0x0028, 0x0121, "US", Words(0));
        var image = Single(b.NativePixelData(Words(stored), 16));
        Assert.All(image.Pixels[..10], v => Assert.Equal(0f, v));
        // 60 → (60 - 11) × 255 / 97 = 128.814
        Near([0, 128.814f, 255], [image.Pixels[11], image.Pixels[60], image.Pixels[108]]);
    }

    [Fact]
    public void Palette_colour_with_8_bit_entries_expands_to_rgb()
    {
        // 256 entries from 0, 8 bits each, packed two to a 16-bit word (PS3.3 C.7.6.3.1.5): red i, green 255 - i, blue 3i mod 256.
        byte[] red = [.. Enumerable.Range(0, 256).Select(i => (byte)i)];
        byte[] green = [.. Enumerable.Range(0, 256).Select(i => (byte)(255 - i))];
        byte[] blue = [.. Enumerable.Range(0, 256).Select(i => (byte)(i * 3 % 256))];
        var b = Image(1, 4, 8, "PALETTE COLOR");
        foreach (ushort e in new ushort[] { 0x1101, 0x1102, 0x1103 }) b.Element(0x0028, e, "US", Words(256, 0, 8));
        b.Element(0x0028, 0x1201, "OW", red).Element(0x0028, 0x1202, "OW", green).Element(0x0028, 0x1203, "OW", blue);
        var image = Single(b.NativePixelData([0, 1, 100, 255], 8));
        Assert.Equal(3, image.Channels);
        Near([0, 255, 0, 1, 254, 3, 100, 155, 44, 255, 0, 253], image.Pixels);
    }

    [Fact]
    public void Palette_colour_with_16_bit_entries_maps_from_the_first_mapped_value()
    {
        // 1000 entries for pixel values 500..1499, 16 bits each: red 65j, green 65535 - 65j, blue 0x8080 (128 of 255).
        // Below the first mapped value the first entry applies, above the table the last (C.7.6.3.1.5).
        var b = Image(1, 5, 16, "PALETTE COLOR");
        foreach (ushort e in new ushort[] { 0x1101, 0x1102, 0x1103 }) b.Element(0x0028, e, "US", Words(1000, 500, 16));
        b.Element(0x0028, 0x1201, "OW", Words([.. Enumerable.Range(0, 1000).Select(j => 65 * j)]))
            .Element(0x0028, 0x1202, "OW", Words([.. Enumerable.Range(0, 1000).Select(j => 65535 - 65 * j)]))
            .Element(0x0028, 0x1203, "OW", Words([.. Enumerable.Range(0, 1000).Select(_ => 0x8080)]));
        var image = Single(b.NativePixelData(Words(0, 500, 999, 1499, 3000), 16));
        // Entry j scaled to 0..255: red 65j × 255 / 65535 (j = 499: 126.2062, j = 999: 252.6654), green the rest of 255.
        Near([0, 255, 128, 0, 255, 128, 126.2062f, 128.7938f, 128, 252.6654f, 2.3346f, 128, 252.6654f, 2.3346f, 128], image.Pixels);
    }

    [Fact]
    public void Ybr_full_converts_to_rgb_with_the_equations_of_PS3_3_C_7_6_3_1_2()
    {
        // R = Y + 1.402 (Cr - 128), G = Y - 0.344136 (Cb - 128) - 0.714136 (Cr - 128), B = Y + 1.772 (Cb - 128), clamped:
        // (76, 85, 255) → (254.054, 0.103, -0.196 → 0); (150, 44, 21) → (-0.014 → 0, 255.32 → 255, 1.152); grey stays grey.
        var image = Single(Image(1, 3, 8, "YBR_FULL", samples: 3).NativePixelData([76, 85, 255, 150, 44, 21, 128, 128, 128], 8));
        Assert.Equal(3, image.Channels);
        Near([254.054f, 0.103f, 0, 0, 255, 1.152f, 128, 128, 128], image.Pixels);
    }

    [Fact]
    public void Ybr_full_422_shares_each_chroma_pair_between_two_pixels()
    {
        // Stored Y1 Y2 Cb Cr: (76, 150, 85, 255) is (76, 85, 255) and (150, 85, 255); the second is (328 → 255, 74.103, 73.804).
        var image = Single(Image(1, 2, 8, "YBR_FULL_422", samples: 3).NativePixelData([76, 150, 85, 255], 8));
        Near([254.054f, 0.103f, 0, 255, 74.103f, 73.804f], image.Pixels);
    }

    /// <summary>Three 2×2 frames of 10, 110 and 210 under window 128/256, which maps 8-bit values to themselves.</summary>
    private static DicomBuilder ThreeFrames() =>
        Window(Image(2, 2, 8, frames: 3), 128, 256).NativePixelData([.. Enumerable.Range(0, 12).Select(i => (byte)(10 + 100 * (i / 4)))], 8);

    [Theory]
    [InlineData(FrameSelection.Middle, new[] { 1 })]
    [InlineData(FrameSelection.First, new[] { 0 })]
    [InlineData(FrameSelection.All, new[] { 0, 1, 2 })]
    public void Frame_selection_picks_the_right_frames(FrameSelection selection, int[] expected)
    {
        var frames = Read(ThreeFrames(), selection).Frames;
        Assert.Equal(expected, frames.Select(f => f.FrameIndex));
        foreach (var frame in frames)
            Near([.. Enumerable.Repeat(10f + 100 * frame.FrameIndex, 4)], frame.Image.Pixels);
    }

    [Fact]
    public void Open_decodes_the_selected_frames_one_at_a_time_and_a_broken_frame_fails_only_when_decoded()
    {
        // RLE Lossless, three 2x2 frames: 10s, 110s, then a frame whose RLE header claims 99 segments.
        static byte[] RleFrame(byte value)
        {
            var header = new byte[64];
            BinaryPrimitives.WriteUInt32LittleEndian(header, 1);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), 64);
            return [.. header, 3, value, value, value, value, 0]; // a literal run of 4, padded to even length
        }
        var broken = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(broken, 99);
        var b = Window(Image(2, 2, 8, frames: 3), 128, 256);
        b.Header(0x7FE0, 0x0010, "OB", DicomBuilder.Undefined).Item(0xE000, 0);
        foreach (var frame in new[] { RleFrame(10), RleFrame(110), broken })
            b.Item(0xE000, (uint)frame.Length).Raw(frame);
        b.Item(0xE0DD, 0);
        var bytes = DicomBuilder.Part10("1.2.840.10008.1.2.5", b.ToArray());

        var opened = ImageReader.Open(bytes, "three-frames.dcm", new ImageReadOptions { Frames = FrameSelection.All });
        Assert.Equal([0, 1, 2], opened.FrameIndexes);
        Assert.Equal(ImageFormat.Dicom, opened.Format);
        Assert.NotNull(opened.Dicom);
        Near([10f, 10f, 10f, 10f], opened.Decode(0).Image.Pixels);
        Near([110f, 110f, 110f, 110f], opened.Decode(1).Image.Pixels);
        var e = Assert.Throws<ImageDecodeException>(() => opened.Decode(2));
        Assert.Equal("three-frames.dcm", e.Source);
        Assert.Throws<ArgumentOutOfRangeException>(() => opened.Decode(3));
        // Read decodes every selected frame up front, so the same file fails there as a whole.
        Assert.Throws<ImageDecodeException>(() => ImageReader.Read(bytes, "three-frames.dcm", new ImageReadOptions { Frames = FrameSelection.All }));
        Assert.Equal([1], ImageReader.Open(bytes, "three-frames.dcm").FrameIndexes);
    }

    [Fact]
    public void A_transfer_syntax_no_decoder_reads_is_a_decode_error_naming_it_before_any_frame()
    {
        var b = Window(Image(2, 2, 8, frames: 1), 128, 256);
        b.Header(0x7FE0, 0x0010, "OB", DicomBuilder.Undefined).Item(0xE000, 0).Item(0xE000, 4).Raw([1, 2, 3, 4]).Item(0xE0DD, 0);
        var bytes = DicomBuilder.Part10("1.2.840.10008.1.2.4.100", b.ToArray()); // MPEG2 Main Profile
        var e = Assert.Throws<ImageDecodeException>(() => ImageReader.Open(bytes, "mpeg.dcm"));
        Assert.Equal("mpeg.dcm", e.Source);
        Assert.Contains("1.2.840.10008.1.2.4.100", e.Reason);
        Assert.Throws<ImageDecodeException>(() => ImageReader.Read(bytes, "mpeg.dcm"));
    }

    [Fact]
    public void Enhanced_multi_frame_uses_each_frames_pixel_value_transformation()
    {
        // Stored 50 everywhere. Shared functional groups: window 128/256 (identity). Per frame: intercept 0, intercept
        // 100, slope 2 → 50, 150, 100. The top-level rescale (intercept 1000) is a decoy the functional groups override.
        static Action<DicomBuilder> Transformation(double intercept, double slope) => item =>
            Sequence(item, 0x0028, 0x9145, t => Rescale(t, intercept, slope).String(0x0028, 0x1054, "LO", "US"));
        var b = Rescale(Image(1, 2, 16, frames: 3), 1000, 1);
        Sequence(b, 0x5200, 0x9229, shared => Sequence(shared, 0x0028, 0x9132, voi => Window(voi, 128, 256)));
        Sequence(b, 0x5200, 0x9230, Transformation(0, 1), Transformation(100, 1), Transformation(0, 2));
        var frames = Read(b.NativePixelData(Words(50, 50, 50, 50, 50, 50), 16), FrameSelection.All).Frames;
        Assert.Equal([50f, 150f, 100f], frames.Select(f => f.Image.Pixels[0]));
    }

    /// <summary>Real files, one per kind the pipeline treats differently; previews of them are written for a person to look at.</summary>
    private static readonly (string Path, int Channels)[] CorpusFiles =
    [
        ("dicomParser/testImages/CT1_UNC.explicit_little_endian.dcm", 1),  // CT, rescale to HU and a window
        ("pydicom-data/files/MR2_J2KR.dcm", 1),                            // MR, JPEG 2000 lossless
        ("pydicom-data/files/OBXXXX1A.dcm", 3),                            // US, 8-bit palette
        ("pydicom-data/files/gdcm-US-ALOKA-16.dcm", 3),                    // US, 16-bit palette
        ("pydicom-data/files/RG3_J2KR.dcm", 1),                            // CR, MONOCHROME1
        ("pydicom/test_files/examples_ybr_color.dcm", 3),                  // US, YBR_FULL_422 JPEG baseline, 30 frames
        ("pydicom-data/files/eCT_Supplemental.dcm", 1),                    // enhanced CT, functional groups
    ];

    /// <summary>
    /// Two places per grey image, found by looking at the previews, that a correct display shows bright and dark
    /// (row, column, 16×16 pixels around): an inverted MONOCHROME1 or a washed-out stretch brings them close together.
    /// </summary>
    private static readonly Dictionary<string, ((int Row, int Column) Bright, (int Row, int Column) Dark, string What)> Landmarks = new()
    {
        ["dicomParser/testImages/CT1_UNC.explicit_little_endian.dcm"] = ((190, 250), (250, 130), "heart brighter than the right lung"),
        ["pydicom-data/files/MR2_J2KR.dcm"] = ((500, 400), (100, 100), "humeral head brighter than the air above the shoulder"),
        ["pydicom-data/files/RG3_J2KR.dcm"] = ((516, 911), (344, 520), "tibia brighter than the air beside the leg"),
    };

    public static string PreviewFolder => Path.Combine(Path.GetTempPath(), "medsearch-dicom-previews");

    [SharedDataFact("dicom")]
    public void Corpus_files_render_to_plausible_images()
    {
        Directory.CreateDirectory(PreviewFolder);
        foreach (var (relative, channels) in CorpusFiles)
        {
            var path = Path.Combine(SharedData.Require("dicom"), relative);
            var input = ImageReader.Read(File.ReadAllBytes(path), path);
            var image = Assert.Single(input.Frames).Image;
            Assert.Equal(channels, image.Channels);
            Assert.Equal((input.Dicom!.Columns, input.Dicom.Rows), (image.Width, image.Height));
            Assert.All(image.Pixels, v => Assert.InRange(v, 0f, 255f));
            double mean = image.Pixels.Average(v => (double)v);
            double deviation = Math.Sqrt(image.Pixels.Average(v => (v - mean) * (v - mean)));
            // A real image spreads over the range: a flat or nearly flat render means a lost window, rescale or palette.
            Assert.True(deviation > 20, $"{relative}: standard deviation {deviation:F1} around {mean:F1}: nearly flat");

            if (Landmarks.TryGetValue(relative, out var landmark))
            {
                double bright = Patch(image, landmark.Bright), dark = Patch(image, landmark.Dark);
                Assert.True(bright - dark >= 100, $"{relative}: {landmark.What} should differ by 100 or more; they are {bright:F0} and {dark:F0}");
            }

            var png = Path.Combine(PreviewFolder, Path.GetFileNameWithoutExtension(relative) + ".png");
            SavePng(image, png);
            output.WriteLine($"{relative}: {image.Width}x{image.Height}x{image.Channels}, mean {mean:F1}, sd {deviation:F1}, preview {png}");
        }
    }

    private static double Patch(PixelImage image, (int Row, int Column) centre)
    {
        double sum = 0;
        for (int y = centre.Row - 8; y < centre.Row + 8; y++)
            for (int x = centre.Column - 8; x < centre.Column + 8; x++)
                sum += image.Pixels[y * image.Width + x];
        return sum / 256;
    }

    private static void SavePng(PixelImage image, string path)
    {
        var bytes = image.ToPreview();
        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, image.Channels == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque));
        var pixels = bitmap.GetPixelSpan();
        if (image.Channels == 1) bytes.CopyTo(pixels);
        else
            for (int i = 0, n = image.Width * image.Height; i < n; i++)
            {
                pixels[i * 4] = bytes[i * 3];
                pixels[i * 4 + 1] = bytes[i * 3 + 1];
                pixels[i * 4 + 2] = bytes[i * 3 + 2];
                pixels[i * 4 + 3] = 255;
            }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}
