using System.Diagnostics;
using System.Security.Cryptography;
using MedSearch.Dicom;
using MedSearch.Dicom.Codecs;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Imaging.Dicom;

namespace MedSearch.Bench.Encoder;

/// <summary>
/// Where the index job's decode stage spends its time per file, single-threaded and without the encoder: the steps
/// of IndexJob.Prepare, the read split into the parts DicomImageReader does. Then the whole ImageReader.Read and
/// the whole prepare-as-the-job-does-it, which the parts should add up to.
/// </summary>
internal static class DecodeProfile
{
    private static readonly string[] Stages =
    [
        "file read", "file SHA-256", "key (header peek)", "parse", "metadata", "frame decode", "pixel pipeline",
        "facts", "preprocess", "thumbnail PNG", "pixel SHA-256", "failed",
    ];

    /// <summary>Pixel-pipeline milliseconds per photometric interpretation and sample size, and per file, over all rounds.</summary>
    private static readonly Dictionary<string, double> Kinds = [];
    private static readonly Dictionary<string, double> PerFile = [];

    /// <param name="digests">Where one line per file goes: a hash of its pixel hash, thumbnail and model input, so
    /// that a change to the decode stage can be checked for identical output against the last run's file.</param>
    public static void Run(string root, string modelHome, int rounds, string digests)
    {
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        using var encoder = ImageEncoder.OpenDefault(modelHome, new EncoderOptions { MaxBatchSize = 1 });
        var options = new ImageReadOptions { PatientHasher = new PatientHasher(new byte[PatientHasher.KeyBytes]) };
        var perRound = Stages.ToDictionary(s => s, _ => new List<double>());
        var whole = new List<double>();
        var prepared = new List<double>();
        var input = new float[encoder.InputLength];
        var slowest = new Dictionary<string, double>();
        int embedded = 0;
        long pixels = 0;
        // Round 0 warms the JIT up and is not counted.
        for (int round = 0; round <= rounds; round++)
        {
            var totals = Stages.ToDictionary(s => s, _ => 0.0);
            embedded = 0;
            pixels = 0;
            foreach (var path in files)
            {
                var times = Parts(path, options, encoder, input, ref embedded, ref pixels);
                foreach (var (stage, ms) in times) totals[stage] += ms;
                if (round == rounds) slowest[path] = times.Values.Sum();
            }
            var watch = Stopwatch.StartNew();
            foreach (var path in files)
            {
                try { ImageReader.Read(File.ReadAllBytes(path), path, options); }
                catch (ImageDecodeException) { }
            }
            double read = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            var lines = files.Select(path => Prepare(path, options, encoder, input)).ToList();
            double prepare = watch.Elapsed.TotalMilliseconds;
            if (round == rounds) File.WriteAllLines(digests, lines);
            if (round == 0) continue;
            foreach (var (stage, ms) in totals) perRound[stage].Add(ms);
            whole.Add(read);
            prepared.Add(prepare);
            Console.WriteLine($"round {round}: parts {totals.Values.Sum(),7:F0} ms, ImageReader.Read {read,7:F0} ms, prepare {prepare,7:F0} ms");
        }
        Console.WriteLine($"\n{files.Count} files, {embedded} images embedded ({pixels / 1e6:F1} M pixel values); ms per pass (one thread), median and fastest of {rounds} rounds\n");
        Console.WriteLine("| stage | median ms | fastest ms |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var stage in Stages) Console.WriteLine($"| {stage} | {Median(perRound[stage]):F0} | {perRound[stage].Min():F0} |");
        Console.WriteLine($"| **sum of stages** | {Median(Enumerable.Range(0, rounds).Select(r => Stages.Sum(s => perRound[s][r])).ToList()):F0} |");
        Console.WriteLine($"| ImageReader.Read alone | {Median(whole):F0} |");
        Console.WriteLine($"| whole prepare | {Median(prepared):F0} |");
        Console.WriteLine("\npixel pipeline by kind (ms, all rounds):");
        foreach (var (kind, ms) in Kinds.OrderByDescending(p => p.Value)) Console.WriteLine($"{ms,8:F0}  {kind}");
        Console.WriteLine("\npixel pipeline by file (ms, all rounds):");
        foreach (var (path, ms) in PerFile.OrderByDescending(p => p.Value).Take(8)) Console.WriteLine($"{ms,8:F0}  {Path.GetRelativePath(root, path)}");
        Console.WriteLine("\nslowest files (last round, ms):");
        foreach (var (path, ms) in slowest.OrderByDescending(p => p.Value).Take(12))
            Console.WriteLine($"{ms,8:F1}  {Path.GetRelativePath(root, path)}");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>IndexJob.Prepare's steps, each timed; a step that throws ends the file, as it does in the job.</summary>
    private static Dictionary<string, double> Parts(string path, ImageReadOptions options, ImageEncoder encoder, float[] input, ref int embedded, ref long pixels)
    {
        var times = new Dictionary<string, double>();
        byte[]? buffer = null;
        long started = Stopwatch.GetTimestamp();
        void Lap(string stage)
        {
            long now = Stopwatch.GetTimestamp();
            times[stage] = Stopwatch.GetElapsedTime(started, now).TotalMilliseconds;
            started = now;
        }
        try
        {
            (buffer, int length) = ReadPooled(path);
            var bytes = buffer.AsMemory(0, length);
            Lap("file read");
            var sha = SHA256.HashData(bytes.Span);
            Lap("file SHA-256");
            CaseWriter.KeyOf(bytes, path, path);
            Lap("key (header peek)");
            IReadOnlyList<PixelImage> images;
            ImageInput whole;
            if (ImageReader.Detect(bytes.Span) != ImageFormat.Dicom)
            {
                whole = ImageReader.Read(bytes, path, options);
                images = [whole.Frames[0].Image];
                Lap("frame decode");
            }
            else
            {
                var file = DicomFile.Open(bytes, path, options.Limits);
                var dataset = file.Dataset;
                if (!dataset.Contains(DicomTag.PixelData)) return times;
                var pixelData = file.GetPixelData();
                Lap("parse");
                var metadata = InstanceMetadata.From(dataset, options.PatientHasher!);
                Lap("metadata");
                var decoder = FrameDecoders.ForTransferSyntax(file.TransferSyntax.Uid);
                var format = new FrameFormat(pixelData.Rows, pixelData.Columns, pixelData.SamplesPerPixel, pixelData.BitsAllocated,
                    pixelData.BitsStored, pixelData.IsSigned, pixelData.PhotometricInterpretation);
                int index = pixelData.NumberOfFrames / 2;
                var samples = new byte[pixelData.FrameBytes];
                string photometric = decoder is null
                    ? pixelData.GetNativeFrame(index, samples)
                    : decoder.Decode(pixelData.GetFrame(index).Span, format, samples);
                Lap("frame decode");
                var perFrame = dataset.GetSequence(DicomTag.PerFrameFunctionalGroupsSequence);
                var image = PixelPipeline.Render(new PixelPipeline.Instance(dataset, pixelData), samples, photometric,
                    index < perFrame.Count ? perFrame[index] : null);
                Lap("pixel pipeline");
                Kinds[$"{photometric} {pixelData.BitsAllocated}-bit"] = Kinds.GetValueOrDefault($"{photometric} {pixelData.BitsAllocated}-bit") + times["pixel pipeline"];
                PerFile[path] = PerFile.GetValueOrDefault(path) + times["pixel pipeline"];
                images = [image];
                whole = new ImageInput(ImageFormat.Dicom, [new DecodedFrame(index, image)], metadata);
            }
            var facts = CaseFacts.From(whole);
            Lap("facts");
            foreach (var image in images)
            {
                encoder.Preprocess(image, input);
                Lap("preprocess");
                image.ToThumbnailPng();
                Lap("thumbnail PNG");
                image.PixelSha256();
                Lap("pixel SHA-256");
                embedded++;
                pixels += image.Pixels.Length;
            }
            GC.KeepAlive(sha);
            GC.KeepAlive(facts);
        }
        catch (Exception e) when (e is DicomException or CodecException or ImageDecodeException or ArgumentException)
        {
            Lap("failed");
        }
        finally
        {
            if (buffer is not null) System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return times;
    }

    /// <summary>IndexJob.Prepare's work on one file as the job does it (no collection: nothing is ever unchanged); its digest line.</summary>
    private static string Prepare(string path, ImageReadOptions options, ImageEncoder encoder, float[] input)
    {
        var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            var (buffer, length) = ReadPooled(path);
            byte[] sha;
            string key;
            ImageInput read;
            try
            {
                var bytes = buffer.AsMemory(0, length);
                sha = SHA256.HashData(bytes.Span);
                key = CaseWriter.KeyOf(bytes, path, path);
                read = ImageReader.Read(bytes, path, options);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
            var facts = CaseFacts.From(read);
            foreach (var frame in read.Frames)
            {
                encoder.Preprocess(frame.Image, input);
                var draft = CaseDraft.Of(key, path, sha, frame.Image, null, facts);
                digest.AppendData(draft.PixelSha256);
                digest.AppendData(draft.Thumbnail);
                digest.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(input.AsSpan()));
            }
        }
        catch (Exception e) when (e is ImageDecodeException or ArgumentException)
        {
            digest.AppendData(System.Text.Encoding.UTF8.GetBytes(e.Message));
        }
        return $"{Convert.ToHexStringLower(digest.GetHashAndReset())}  {Path.GetFileName(Path.GetDirectoryName(path))}/{Path.GetFileName(path)}";
    }

    /// <summary>The file in a pooled buffer, as IndexJob reads it.</summary>
    private static (byte[] Buffer, int Length) ReadPooled(string path)
    {
        using var handle = File.OpenHandle(path);
        int size = (int)RandomAccess.GetLength(handle);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
        int length = 0, read;
        while (length < size && (read = RandomAccess.Read(handle, buffer.AsSpan(length, size - length), length)) > 0) length += read;
        return (buffer, length);
    }
}
