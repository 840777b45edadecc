using System.Buffers.Binary;
using System.Diagnostics;
using Xunit;

namespace MedSearch.Dicom.Codecs.Tests;

/// <summary>
/// Damaged and lying input must end in a <see cref="CodecException"/> (or, for damage a codec cannot see, a decode
/// of garbage), never another exception, a crash of the native libraries, or a hang: each decode gets a second.
/// </summary>
public class HostileInputTests
{
    private static readonly Lazy<Dictionary<string, (IFrameDecoder Decoder, byte[] Frame, FrameFormat Format)>> Samples = new(MakeSamples);

    private static Dictionary<string, (IFrameDecoder, byte[], FrameFormat)> MakeSamples()
    {
        var gray16 = TestImage.Create(64, 80, 1, 16, 16, false);
        var rgb8 = TestImage.Create(64, 80, 3, 8, 8, false);
        var samples = new Dictionary<string, (IFrameDecoder, byte[], FrameFormat)>();
        void Add(string name, TestImage image, string tool, params string[] options)
        {
            var encoded = Tools.Convert(image, tool, options);
            samples[name] = (FrameDecoders.ForTransferSyntax(encoded.TransferSyntax)!, encoded.Frame, encoded.Format);
        }
        Add("rle", gray16, "dcmcrle");
        Add("rle-rgb", rgb8, "dcmcrle");
        Add("jpeg-lossless", gray16, "dcmcjpeg", "+el", "+sv", "7");
        Add("jpeg-baseline", rgb8, "dcmcjpeg", "+eb");
        Add("jpeg-ls", gray16, "dcmcjpls");
        Add("jpeg-ls-rgb", rgb8, "dcmcjpls", "+in");
        Add("jpeg2000", gray16, "gdcmconv", "-K");
        Add("jpeg2000-lossy", rgb8, "gdcmconv", "-K", "-Y", "--irreversible");
        return samples;
    }

    public static TheoryData<string> Codecs => ["rle", "rle-rgb", "jpeg-lossless", "jpeg-baseline", "jpeg-ls", "jpeg-ls-rgb", "jpeg2000", "jpeg2000-lossy"];

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Truncated_frames_are_rejected(string codec)
    {
        var (decoder, frame, format) = Samples.Value[codec];
        foreach (double keep in new[] { 0.0, 0.02, 0.1, 0.5, 0.9, 0.98 })
        {
            byte[] cut = frame[..(int)(frame.Length * keep)];
            AssertRejected(decoder, cut, format, $"{codec} cut to {cut.Length} of {frame.Length} bytes");
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Frames_of_other_dimensions_are_rejected(string codec)
    {
        var (decoder, frame, format) = Samples.Value[codec];
        AssertRejected(decoder, frame, format with { Rows = format.Rows + 1 }, $"{codec} one row more");
        AssertRejected(decoder, frame, format with { Columns = format.Columns - 8 }, $"{codec} 8 columns fewer");
        AssertRejected(decoder, frame, format with { Rows = format.Rows * 64, Columns = format.Columns * 64 }, $"{codec} 64 times larger");
        AssertRejected(decoder, frame, format with { SamplesPerPixel = 4 - format.SamplesPerPixel }, $"{codec} other sample count");
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Garbage_is_rejected(string codec)
    {
        var (decoder, _, format) = Samples.Value[codec];
        var random = new Random(7);
        foreach (int length in new[] { 1, 2, 63, 64, 1000, 20000 })
        {
            byte[] garbage = new byte[length];
            random.NextBytes(garbage);
            AssertRejected(decoder, garbage, format, $"{codec} {length} random bytes");
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Corrupted_frames_fail_cleanly(string codec)
    {
        var (decoder, frame, format) = Samples.Value[codec];
        var random = new Random(11);
        for (int trial = 0; trial < 40; trial++)
        {
            byte[] damaged = (byte[])frame.Clone();
            // Headers hold the interesting lengths and offsets: aim a third of the damage at the first 100 bytes.
            for (int hits = 0; hits < 1 + trial % 4; hits++)
            {
                int at = trial % 3 == 0 ? random.Next(Math.Min(100, damaged.Length)) : random.Next(damaged.Length);
                damaged[at] = (byte)random.Next(256);
            }
            DecodeOrReject(decoder, damaged, format, $"{codec} damage trial {trial}");
        }
    }

    [Fact]
    public void Rle_header_with_bad_segments_is_rejected()
    {
        var (decoder, frame, format) = Samples.Value["rle-rgb"];
        void Reject(string what, Action<byte[]> damage)
        {
            byte[] copy = (byte[])frame.Clone();
            damage(copy);
            AssertRejected(decoder, copy, format, what);
        }
        Reject("segment count 0", f => BinaryPrimitives.WriteUInt32LittleEndian(f, 0));
        Reject("segment count 16", f => BinaryPrimitives.WriteUInt32LittleEndian(f, 16));
        Reject("segment count 1 for RGB", f => BinaryPrimitives.WriteUInt32LittleEndian(f, 1));
        Reject("offset past the end", f => BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(8), (uint)f.Length + 1));
        Reject("offset inside the header", f => BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(8), 12));
        Reject("offset of 4 GB", f => BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(8), uint.MaxValue));
        Reject("decreasing offsets", f => BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(12), 64));
        Reject("equal offsets", f => f.AsSpan(8, 4).CopyTo(f.AsSpan(12)));
    }

    [Fact]
    public void Header_dimensions_larger_than_the_dataset_are_rejected_before_decoding()
    {
        // A lossless JPEG claiming 65535x65535: refused from its header, without allocating for it.
        var image = TestImage.Create(16, 16, 1, 16, 16, false);
        byte[] jpeg = LosslessJpegWriter.Encode(image, 16, 1, 0, interleaved: true);
        int sof = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC3]);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 5), 65535);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 7), 65535);
        AssertRejected(new JpegLosslessDecoder(), jpeg, image.Format, "SOF3 of 65535x65535");
    }

    [Fact]
    public void A_destination_smaller_than_the_frame_is_an_argument_error()
    {
        var (decoder, frame, format) = Samples.Value["jpeg-lossless"];
        Assert.Throws<ArgumentException>(() => decoder.Decode(frame, format, new byte[format.FrameBytes - 1]));
    }

    [Fact]
    public void Unknown_compressed_transfer_syntaxes_are_refused_and_native_ones_need_no_decoder()
    {
        Assert.Null(FrameDecoders.ForTransferSyntax("1.2.840.10008.1.2.1"));
        Assert.Null(FrameDecoders.ForTransferSyntax("1.2.840.10008.1.2\0"));
        Assert.IsType<JpegLosslessDecoder>(FrameDecoders.ForTransferSyntax("1.2.840.10008.1.2.4.70\0"));
        var e = Assert.Throws<CodecException>(() => FrameDecoders.ForTransferSyntax("1.2.840.10008.1.2.4.100"));
        Assert.Contains("1.2.840.10008.1.2.4.100", e.Message);
        Assert.All(FrameDecoders.CompressedTransferSyntaxes, uid => Assert.NotNull(FrameDecoders.ForTransferSyntax(uid)));
    }

    private static void AssertRejected(IFrameDecoder decoder, byte[] frame, FrameFormat format, string what)
    {
        var destination = new byte[Math.Max(format.FrameBytes, 0)];
        var clock = Stopwatch.StartNew();
        var e = Record.Exception(() => decoder.Decode(frame, format, destination));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{what}: took {clock.Elapsed}");
        Assert.True(e is CodecException, $"{what}: expected CodecException, got {e?.GetType().Name ?? "success"}: {e?.Message}");
        Assert.False(string.IsNullOrWhiteSpace(e!.Message));
    }

    private static void DecodeOrReject(IFrameDecoder decoder, byte[] frame, FrameFormat format, string what)
    {
        var destination = new byte[format.FrameBytes];
        var clock = Stopwatch.StartNew();
        var e = Record.Exception(() => decoder.Decode(frame, format, destination));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{what}: took {clock.Elapsed}");
        Assert.True(e is null or CodecException, $"{what}: {e?.GetType().Name}: {e?.Message}");
    }
}
