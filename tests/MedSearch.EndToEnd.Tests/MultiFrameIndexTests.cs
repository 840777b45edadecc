using System.Buffers.Binary;
using MedSearch.Dicom.Tests;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// `index --frames all` on a multi-frame instance: every frame a case of its own, decoded one at a time, and a frame
/// that cannot be decoded fails the file there without taking the frames before it.
/// </summary>
public sealed class MultiFrameIndexTests : IDisposable
{
    private const int Side = 16;
    private readonly string _root = Directory.CreateTempSubdirectory("medsearch-frames-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>One RLE Lossless frame of <see cref="Side"/>² 8-bit pixels, a gradient offset by <paramref name="offset"/>.</summary>
    private static byte[] RleFrame(int offset)
    {
        var header = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), 64);
        var frame = new List<byte>(header);
        for (int run = 0; run < Side * Side / 128; run++)
        {
            frame.Add(127); // a literal run of 128 bytes
            for (int i = 0; i < 128; i++) frame.Add((byte)((run * 128 + i + offset) % 256));
        }
        return [.. frame];
    }

    private static byte[] MultiFrameRle(string sopInstanceUid, params byte[][] frames)
    {
        var b = new DicomBuilder()
            .String(0x0008, 0x0016, "UI", DicomBuilder.SecondaryCapture)
            .String(0x0008, 0x0018, "UI", sopInstanceUid)
            .String(0x0008, 0x0060, "CS", "OT")
            .String(0x0020, 0x000D, "UI", sopInstanceUid + ".1")
            .String(0x0020, 0x000E, "UI", sopInstanceUid + ".2")
            .ImagePixel(Side, Side, frames: frames.Length);
        b.Header(0x7FE0, 0x0010, "OB", DicomBuilder.Undefined).Item(0xE000, 0);
        foreach (var frame in frames) b.Item(0xE000, (uint)frame.Length).Raw(frame);
        b.Item(0xE0DD, 0);
        return DicomBuilder.Part10("1.2.840.10008.1.2.5", b.ToArray());
    }

    [Fact]
    public async Task Every_frame_is_a_case_and_a_broken_frame_fails_the_file_after_the_frames_before_it_are_stored()
    {
        var images = Directory.CreateDirectory(Path.Combine(_root, "images")).FullName;
        var brokenFrame = new byte[64];
        BinaryPrimitives.WriteUInt32LittleEndian(brokenFrame, 99); // an RLE header claiming 99 segments
        File.WriteAllBytes(Path.Combine(images, "cine.dcm"), MultiFrameRle("1.2.3.10", RleFrame(0), RleFrame(40), RleFrame(80), RleFrame(120)));
        File.WriteAllBytes(Path.Combine(images, "broken.dcm"), MultiFrameRle("1.2.3.11", RleFrame(0), RleFrame(60), brokenFrame, RleFrame(90)));
        var options = new CollectionOptions { ModelPath = TinyConvModel.Write(Path.Combine(_root, "model")), Encoder = new EncoderOptions { Device = EncoderDevice.Cpu } };
        using var collection = Collection.Open(Path.Combine(_root, "data"), options);

        var summary = await IndexJob.RunAsync(collection, new IndexJobOptions { Root = images, Frames = FrameSelection.All, BatchSize = 2 });

        // cine.dcm: 4 frames; broken.dcm: frames 0 and 1, then frame 2 fails the file and frame 3 is not read.
        Assert.Equal(6, summary.Indexed);
        var failure = Assert.Single(summary.Failed);
        Assert.EndsWith("broken.dcm [frame 2]", failure.Path);
        Assert.Contains("segment", failure.Reason, StringComparison.OrdinalIgnoreCase);
        var keys = collection.Cases().Select(c => c.Key).Order(StringComparer.Ordinal);
        Assert.Equal(
            [
                CaseId.SopKey("1.2.3.10") + "#frame=0", CaseId.SopKey("1.2.3.10") + "#frame=1",
                CaseId.SopKey("1.2.3.10") + "#frame=2", CaseId.SopKey("1.2.3.10") + "#frame=3",
                CaseId.SopKey("1.2.3.11") + "#frame=0", CaseId.SopKey("1.2.3.11") + "#frame=1",
            ], keys);
    }
}
