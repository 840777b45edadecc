using Xunit;
using Xunit.Abstractions;

namespace MedSearch.Dicom.Codecs.Tests;

public class JpegBaselineTests(ITestOutputHelper output)
{
    /// <summary>
    /// Sequential frames (baseline, extended 12-bit) go through our decoder, which does what DCMTK's libjpeg does step
    /// for step (islow IDCT, range limit, fancy upsampling, YCbCr conversion): identical samples. Progressive frames
    /// ("+ep", and "+es", spectral selection, which DCMTK also codes as SOF2) go through JpegLibrary's float IDCT,
    /// which rounds differently: a few levels apart.
    /// </summary>
    [Theory]
    [InlineData("gray8", new[] { "+eb" }, 1, 8)]
    [InlineData("gray12", new[] { "+ee", "+sr" }, 1, 12)]
    [InlineData("ybr422", new[] { "+eb" }, 3, 8)]
    [InlineData("ybr444", new[] { "+eb", "+s4" }, 3, 8)]
    [InlineData("ybr422full", new[] { "+eb", "+n2" }, 3, 8)]
    [InlineData("ybr411", new[] { "+eb", "+n1" }, 3, 8)]
    [InlineData("rgb", new[] { "+eb", "+cr" }, 3, 8)]
    [InlineData("progressive", new[] { "+ep" }, 3, 8)]
    [InlineData("spectral", new[] { "+es" }, 1, 8)]
    public void Dcmtk_lossy_decodes_close_to_dcmtk(string name, string[] options, int samples, int bits)
    {
        var image = TestImage.Create(267, 393, samples, bits > 8 ? 16 : 8, bits, false, noise: 1.0 / 256);
        var encoded = Tools.Convert(image, "dcmcjpeg", options);
        var reference = Tools.Reference(image, "dcmcjpeg", options, "dcmdjpeg");
        var decoded = Pixels.Decode(encoded);
        Assert.Equal(reference.Format.PhotometricInterpretation, decoded.Photometric);
        int vsReference = Pixels.MaxAbsoluteError(new TestImage(reference.Format, reference.Frame), decoded);
        double psnr = Pixels.Psnr(image, decoded);
        output.WriteLine($"{name}: {encoded.Format.PhotometricInterpretation} -> {decoded.Photometric}, max |ours - dcmdjpeg| = {vsReference}, PSNR vs original {psnr:F1} dB");
        Assert.InRange(vsReference, 0, name is "progressive" or "spectral" ? 3 : 0);
        Assert.True(psnr > 30, $"PSNR {psnr:F1} dB");
    }

    /// <summary>
    /// GDCM writes 4:2:0 (h2v2) YCbCr but labels it RGB without JFIF/Adobe markers, and GDCM and DCMTK then decode it
    /// unconverted; told that the frame is YCbCr, both decoders must agree on libjpeg's h2v2 fancy upsampling, exactly.
    /// </summary>
    [Theory]
    [InlineData(121, 170)]
    [InlineData(75, 33)]
    public void Subsampled_4_2_0_decodes_close_to_libjpeg_fancy_upsampling(int rows, int columns)
    {
        var image = TestImage.Create(rows, columns, 3, 8, 8, false, noise: 1.0 / 256);
        var encoded = Tools.Convert(image, "gdcmconv", "-J", "-Y");
        var reference = Tools.Reference(image, "gdcmconv", ["-J", "-Y"], "dcmdjpeg", "+ca");
        var decoded = Pixels.Decode(new JpegBaselineDecoder(), encoded.Frame, encoded.Format with { PhotometricInterpretation = "YBR_FULL_422" });
        Assert.Equal("RGB", decoded.Photometric);
        int vsReference = Pixels.MaxAbsoluteError(new TestImage(reference.Format, reference.Frame), decoded);
        output.WriteLine($"4:2:0 {columns}x{rows}: max |ours - dcmdjpeg| = {vsReference}, PSNR vs original {Pixels.Psnr(image, decoded):F1} dB");
        Assert.Equal(0, vsReference);
    }

    [Fact]
    public void Rgb_labelled_frame_without_colour_markers_is_not_converted()
    {
        var image = TestImage.Create(40, 48, 3, 8, 8, false);
        var encoded = Tools.Convert(image, "gdcmconv", "-J", "-Y");
        var reference = Tools.Reference(image, "gdcmconv", ["-J", "-Y"], "dcmdjpeg");
        var decoded = Pixels.Decode(encoded);
        Assert.Equal("RGB", decoded.Photometric);
        Assert.Equal(0, Pixels.MaxAbsoluteError(new TestImage(reference.Format, reference.Frame), decoded));
    }

    /// <summary>
    /// Grey frames are written straight into the destination: partial edge blocks, wider containers and a destination
    /// holding another frame's bytes must give the samples of an 8-bit decode, zero-extended.
    /// </summary>
    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    public void Grey_frame_decodes_alike_into_wider_containers_over_stale_bytes(int bitsAllocated)
    {
        var image = TestImage.Create(37, 29, 1, 8, 8, false, noise: 1.0 / 256);
        var encoded = Tools.Convert(image, "dcmcjpeg", "+eb");
        var narrow = Pixels.Decode(encoded);
        var format = encoded.Format with { BitsAllocated = bitsAllocated };
        var destination = new byte[format.FrameBytes];
        Array.Fill(destination, (byte)0xA5);
        new JpegBaselineDecoder().Decode(encoded.Frame, format, destination);
        var wide = new Pixels.Decoded(destination, narrow.Photometric, format);
        for (int i = 0; i < image.Count; i++)
            Assert.Equal(narrow.Get(i), wide.Get(i));
    }
}
