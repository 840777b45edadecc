using System.Buffers.Binary;
using MedSearch.Dicom.Tests;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Tests.Support;
using SkiaSharp;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The index job on a folder: how it walks it (links included), and `--frames all` on a multi-frame instance: every
/// frame a case of its own, decoded one at a time, and a frame that cannot be decoded fails the file there without
/// taking the frames before it.
/// </summary>
public sealed class IndexJobTests : IDisposable
{
    private const int Side = 16;
    private readonly string _root = Directory.CreateTempSubdirectory("medsearch-frames-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private CollectionOptions TinyModel() =>
        new() { ModelPath = TinyConvModel.Write(Path.Combine(_root, "model")), Encoder = new EncoderOptions { Device = EncoderDevice.Cpu } };

    private static void WritePng(string path, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(8, 8, SKColorType.Gray8, SKAlphaType.Opaque);
        for (int i = 0; i < 64; i++) bitmap.SetPixel(i % 8, i / 8, new SKColor((byte)(i * (seed + 1) % 256), 0, 0));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Fact]
    public async Task A_folder_is_walked_once_in_path_order_through_links_that_loop()
    {
        var images = Path.Combine(_root, "images");
        // "b.png" < "b/…" < "b0.png" in ordinal order of the full paths ('.' < '/' < '0').
        string[] files = ["a.png", "b.png", Path.Combine("b", "x.png"), Path.Combine("b", "c", "y.png"), "b0.png", Path.Combine("real", "z.png")];
        for (int i = 0; i < files.Length; i++) WritePng(Path.Combine(images, files[i]), i);
        // A link down to a folder also reached directly, and a link from inside it back up to the top.
        Directory.CreateSymbolicLink(Path.Combine(images, "b", "to-real"), Path.Combine(images, "real"));
        Directory.CreateSymbolicLink(Path.Combine(images, "real", "loop"), images);
        using var collection = Collection.Open(Path.Combine(_root, "data"), TinyModel());
        var totals = new List<int>();

        var summary = await IndexJob.RunAsync(collection, new IndexJobOptions { Root = images }, new SynchronousProgress(p => totals.Add(p.Total)));

        // Each file once: z.png through the first path that reaches its folder (b/to-real sorts before real/).
        Assert.Equal(files.Length, summary.Indexed);
        Assert.Empty(summary.Failed);
        Assert.All(totals, total => Assert.Equal(files.Length, total));
        string[] expected = ["a.png", "b.png", "b/c/y.png", "b/to-real/z.png", "b/x.png", "b0.png"];
        Assert.Equal(expected.Select(CaseId.FileKey).Order(StringComparer.Ordinal),
            collection.Cases().Select(c => c.Key).Order(StringComparer.Ordinal));
    }

    /// <summary>Reports on the caller's thread, so that every report is in before the job returns.</summary>
    private sealed class SynchronousProgress(Action<IndexProgress> report) : IProgress<IndexProgress>
    {
        public void Report(IndexProgress value) => report(value);
    }

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
        using var collection = Collection.Open(Path.Combine(_root, "data"), TinyModel());

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
