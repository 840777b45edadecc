using Xunit;
using Xunit.Abstractions;

namespace MedSearch.Dicom.Codecs.Tests;

public class Jpeg2000Tests(ITestOutputHelper output)
{
    public static TheoryData<int, int, int, bool> LosslessFormats => new()
    {
        // samples, bits allocated, bits stored, signed
        { 1, 8, 8, false },
        { 1, 16, 16, false },
        { 1, 16, 12, true },
        { 1, 16, 16, true },
        { 3, 8, 8, false },
        { 3, 16, 12, false },
    };

    [Theory]
    [MemberData(nameof(LosslessFormats))]
    public void Gdcm_lossless_decodes_identically(int samples, int bitsAllocated, int bitsStored, bool signed)
    {
        var image = TestImage.Create(59, 81, samples, bitsAllocated, bitsStored, signed, extremes: true);
        var encoded = Tools.Convert(image, "gdcmconv", "-K");
        Assert.Equal("1.2.840.10008.1.2.4.90", encoded.TransferSyntax);
        var decoded = Pixels.Decode(encoded);
        Pixels.AssertIdentical(image, decoded);
        Assert.Equal(samples == 3 ? "RGB" : "MONOCHROME2", decoded.Photometric);
    }

    [Theory]
    [InlineData(1, 8, 8)]
    [InlineData(1, 16, 12)]
    [InlineData(3, 8, 8)]
    public void Gdcm_lossy_decodes_like_gdcm(int samples, int bitsAllocated, int bitsStored)
    {
        var image = TestImage.Create(120, 97, samples, bitsAllocated, bitsStored, false, noise: 1.0 / 256);
        string[] lossy = ["-K", "-Y", "--irreversible", "-r", "5"];
        var encoded = Tools.Convert(image, "gdcmconv", lossy);
        var reference = Tools.Reference(image, "gdcmconv", lossy, "gdcmconv", "-w");
        var decoded = Pixels.Decode(encoded);
        int vsReference = Pixels.MaxAbsoluteError(new TestImage(reference.Format, reference.Frame), decoded);
        double psnr = Pixels.Psnr(image, decoded);
        output.WriteLine($"{encoded.TransferSyntax} {encoded.Format.PhotometricInterpretation}: max |ours - gdcm| = {vsReference}, PSNR vs original {psnr:F1} dB");
        Assert.Equal("1.2.840.10008.1.2.4.91", encoded.TransferSyntax);
        // Same OpenJPEG underneath: identical to GDCM's own decode.
        Assert.Equal(0, vsReference);
        Assert.True(psnr is > 30 and < double.PositiveInfinity, $"PSNR {psnr:F1} dB");
    }

    [Theory]
    [InlineData("YBR_RCT")]
    [InlineData("RGB")]
    public void Colour_transform_in_the_codestream_makes_the_output_rgb(string label)
    {
        // GDCM never sets the multiple-component transform; OpenJPH does by default for three components.
        var image = TestImage.Create(30, 41, 3, 8, 8, false, photometric: label);
        byte[] codestream = HighThroughput(image, "-reversible", "true");
        var decoded = Pixels.Decode(new Jpeg2000Decoder(), codestream, image.Format);
        Pixels.AssertIdentical(image, decoded);
        Assert.Equal("RGB", decoded.Photometric);
    }

    public static TheoryData<int, int, int, bool, bool> HighThroughputFormats => new()
    {
        // samples, bits allocated, bits stored, signed, colour transform (OpenJPH 0.9 cannot read signed input;
        // signed JPEG 2000 is covered by the GDCM cases, and OpenJPEG treats it alike in both coders)
        { 1, 8, 8, false, false },
        { 1, 16, 16, false, false },
        { 1, 16, 12, false, false },
        { 3, 8, 8, false, true },
        { 3, 8, 8, false, false },
    };

    [Theory]
    [MemberData(nameof(HighThroughputFormats))]
    public void OpenJph_lossless_htj2k_decodes_identically(int samples, int bitsAllocated, int bitsStored, bool signed, bool colourTransform)
    {
        var image = TestImage.Create(47, 66, samples, bitsAllocated, bitsStored, signed, extremes: true,
            photometric: samples == 3 ? "YBR_RCT" : null);
        byte[] codestream = samples == 3
            ? HighThroughput(image, "-reversible", "true", "-colour_trans", colourTransform ? "true" : "false")
            : HighThroughput(image, "-reversible", "true");
        var decoded = Pixels.Decode(FrameDecoders.ForTransferSyntax("1.2.840.10008.1.2.4.201")!, codestream, image.Format);
        Pixels.AssertIdentical(image, decoded);
        Assert.Equal(colourTransform ? "RGB" : image.Format.PhotometricInterpretation, decoded.Photometric);
    }

    [Fact]
    public void OpenJph_lossy_htj2k_decodes_close_to_the_original()
    {
        var image = TestImage.Create(128, 96, 1, 16, 12, false, noise: 1.0 / 256);
        byte[] codestream = HighThroughput(image, "-qstep", "0.002");
        var decoded = Pixels.Decode(FrameDecoders.ForTransferSyntax("1.2.840.10008.1.2.4.203")!, codestream, image.Format);
        double psnr = Pixels.Psnr(image, decoded);
        output.WriteLine($"HTJ2K lossy: PSNR {psnr:F1} dB, max error {Pixels.MaxAbsoluteError(image, decoded)}");
        Assert.True(psnr is > 40 and < double.PositiveInfinity, $"PSNR {psnr:F1} dB");
    }

    [Fact]
    public void Jp2_file_wrapping_the_codestream_decodes_identically()
    {
        var image = TestImage.Create(24, 36, 3, 8, 8, false, photometric: "YBR_RCT");
        byte[] jp2 = WrapInJp2(HighThroughput(image, "-reversible", "true"), image.Format);
        var decoded = Pixels.Decode(new Jpeg2000Decoder(), jp2, image.Format);
        Pixels.AssertIdentical(image, decoded);
        Assert.Equal("RGB", decoded.Photometric);
    }

    /// <summary>A minimal JP2 file (ISO 15444-1 Annex I): signature, file type, header (ihdr, colr) and the codestream box.</summary>
    private static byte[] WrapInJp2(byte[] codestream, FrameFormat f)
    {
        static byte[] Box(string type, params byte[][] content)
        {
            byte[] body = content.SelectMany(b => b).ToArray();
            byte[] box = new byte[8 + body.Length];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(box, (uint)box.Length);
            System.Text.Encoding.ASCII.GetBytes(type).CopyTo(box, 4);
            body.CopyTo(box, 8);
            return box;
        }
        static byte[] U32(int v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];
        byte[] header = Box("ihdr", U32(f.Rows), U32(f.Columns), [0, (byte)f.SamplesPerPixel, (byte)(f.BitsStored - 1), 7, 0, 0]);
        byte[] colour = Box("colr", [1, 0, 0], U32(f.SamplesPerPixel == 3 ? 16 : 17));
        return [.. Box("jP  ", [0x0D, 0x0A, 0x87, 0x0A]), .. Box("ftyp", "jp2 "u8.ToArray(), U32(0), "jp2 "u8.ToArray()),
            .. Box("jp2h", header, colour), .. Box("jp2c", codestream)];
    }

    /// <summary>OpenJPH reads unsigned PGM/PPM (16-bit big-endian above 8 bits).</summary>
    private static byte[] HighThroughput(TestImage image, params string[] options)
    {
        FrameFormat f = image.Format;
        using var scratch = new Tools.Scratch();
        string input = scratch.File(f.SamplesPerPixel == 3 ? "in.ppm" : "in.pgm"), output = scratch.File("out.j2c");
        var netpbm = new MemoryStream();
        netpbm.Write(System.Text.Encoding.ASCII.GetBytes($"{(f.SamplesPerPixel == 3 ? "P6" : "P5")}\n{f.Columns} {f.Rows}\n{image.Max}\n"));
        for (int i = 0; i < image.Count; i++)
        {
            int v = image.Get(i);
            if (f.BytesPerSample == 2)
                netpbm.WriteByte((byte)(v >> 8));
            netpbm.WriteByte((byte)v);
        }
        File.WriteAllBytes(input, netpbm.ToArray());
        Tools.Run("ojph_compress", ["-i", input, "-o", output, .. options]);
        return File.ReadAllBytes(output);
    }
}
