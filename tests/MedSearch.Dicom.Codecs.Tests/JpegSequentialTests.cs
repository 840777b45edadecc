using Xunit;
using Xunit.Abstractions;

namespace MedSearch.Dicom.Codecs.Tests;

/// <summary>
/// Our sequential DCT decoder against DCMTK's libjpeg on streams from <see cref="SequentialDctWriter"/>, wrapped into
/// DICOM by img2dcm and decoded by dcmdjpeg. Both use libjpeg's islow IDCT, range limiting and upsampling, so the
/// samples must be identical, colour conversion included.
/// </summary>
public class JpegSequentialTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(8, "11", 0, true, 61, 75)]
    [InlineData(8, "22", 7, true, 61, 75)]          // one component: a non-interleaved MCU of one block despite 2x2
    [InlineData(8, "22,11,11", 5, true, 75, 61)]    // restarts in mid MCU row, partial MCUs right and below
    [InlineData(8, "21,11,11", 3, false, 40, 53)]   // three non-interleaved scans
    [InlineData(8, "12,11,11", 0, true, 33, 47)]    // vertical 2:1 only: libjpeg replicates rows
    [InlineData(8, "31,11,11", 4, true, 29, 70)]    // 3:1, replicated
    [InlineData(8, "22,12,21", 1, false, 50, 50)]   // different ratios per chroma component, restart every MCU
    [InlineData(12, "11", 6, true, 45, 38)]         // extended 12-bit with a 16-bit DQT
    [InlineData(12, "22,11,11", 2, true, 45, 38)]
    public void Sequential_streams_decode_exactly_as_dcmdjpeg(int precision, string sampling, int restartInterval, bool interleaved, int rows, int columns)
    {
        byte[] jpeg = SequentialDctWriter.Encode(rows, columns, precision, sampling, restartInterval, interleaved, seed: rows * columns);
        var (encoded, reference) = WrapAndDecode(jpeg);
        var decoded = Pixels.Decode(encoded);
        Assert.Equal(reference.Format.PhotometricInterpretation, decoded.Photometric);
        int difference = Pixels.MaxAbsoluteError(new TestImage(reference.Format, reference.Frame), decoded);
        output.WriteLine($"{precision}-bit {sampling} restart {restartInterval} {(interleaved ? "interleaved" : "non-interleaved")}: max |ours - dcmdjpeg| = {difference}");
        Assert.Equal(0, difference);
    }

    [Fact]
    public void Truncated_entropy_data_is_rejected_even_with_an_end_marker()
    {
        byte[] jpeg = SequentialDctWriter.Encode(64, 64, 8, "22,11,11", 0, true, seed: 3);
        var (encoded, _) = WrapAndDecode(jpeg);
        int scan = jpeg.AsSpan().LastIndexOf([(byte)0xFF, (byte)0xDA]);
        foreach (int keep in new[] { scan + 20, (scan + jpeg.Length) / 2, jpeg.Length - 40 })
        {
            // Cut inside the entropy-coded data, then end the stream properly: only the scan itself shows the loss.
            byte[] cut = [.. jpeg[..keep], 0xFF, 0xD9];
            var e = Assert.Throws<CodecException>(() => Pixels.Decode(new JpegBaselineDecoder(), cut, encoded.Format));
            Assert.Contains("truncated", e.Message);
            Assert.Throws<CodecException>(() => Pixels.Decode(new JpegBaselineDecoder(), jpeg[..keep], encoded.Format));
        }
    }

    [Fact]
    public void Undefined_huffman_code_is_rejected()
    {
        byte[] jpeg = SequentialDctWriter.Encode(32, 32, 8, "11", 0, true, seed: 5);
        var (encoded, _) = WrapAndDecode(jpeg);
        int data = jpeg.AsSpan().LastIndexOf([(byte)0xFF, (byte)0xDA]) + 2 + 8;
        // Sixteen 1-bits (a stuffed 0xFF twice): the writer's codes leave the all-ones code undefined, as C.2 requires.
        byte[] damaged = [.. jpeg[..data], 0xFF, 0x00, 0xFF, 0x00, .. jpeg[data..]];
        var e = Assert.Throws<CodecException>(() => Pixels.Decode(new JpegBaselineDecoder(), damaged, encoded.Format));
        Assert.Contains("Huffman table", e.Message);
    }

    [Fact]
    public void Scan_without_entropy_data_fails_fast_instead_of_decoding_zeros()
    {
        // 8192 x 8192 of nothing: the zero padding must give out long before a million blocks are decoded from it.
        byte[] jpeg = SequentialDctWriter.Encode(8, 8, 8, "11", 0, true, seed: 1);
        int data = jpeg.AsSpan().LastIndexOf([(byte)0xFF, (byte)0xDA]) + 2 + 8;
        int sof = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        byte[] empty = [.. jpeg[..data], 0xFF, 0xD9];
        empty[sof + 5] = empty[sof + 7] = 0x20;
        empty[sof + 6] = empty[sof + 8] = 0x00;
        var format = new FrameFormat(8192, 8192, 1, 8, 8, false, "MONOCHROME2");
        var started = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<CodecException>(() => new JpegBaselineDecoder().Decode(empty, format, new byte[format.FrameBytes]));
        Assert.Contains("truncated", e.Message);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(1), $"took {started.Elapsed}");
    }

    /// <summary>The stream as img2dcm wraps it (what our decoder is given), and dcmdjpeg's decode of that file.</summary>
    private static (Part10.Image Encoded, Part10.Image Reference) WrapAndDecode(byte[] jpeg)
    {
        using var scratch = new Tools.Scratch();
        string input = scratch.File("in.jpg"), encoded = scratch.File("enc.dcm"), decoded = scratch.File("dec.dcm");
        File.WriteAllBytes(input, jpeg);
        Tools.Run("img2dcm", input, encoded);
        Tools.Run("dcmdjpeg", encoded, decoded);
        return (Part10.Read(File.ReadAllBytes(encoded)), Part10.Read(File.ReadAllBytes(decoded)));
    }
}
