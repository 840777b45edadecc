using System.Diagnostics;
using System.Globalization;
using MedSearch.Dicom;
using MedSearch.Dicom.Codecs;
using MedSearch.Imaging;

// Two commands, one file at a time (JPEG 2000 frames use OpenJPEG's threads, as in the product), timing in-memory
// bytes only (files are read before the clock):
//   list ORACLE_TSV DICOM_ROOT  the oracle's "ok" files whose every frame we decode, as "path<TAB>group<TAB>decoded bytes<TAB>frames"
//   serve FILES_TSV WARMUPS     reads the files, makes untimed warm-up passes (the tiered JIT needs a few to reach optimised
//                               code), prints "ready"; then for each "round" on stdin one timed pass each of "raw" (DicomFile
//                               + codecs to samples) and "pipeline" (ImageReader to PixelImage, all frames): one JSON line per
//                               group and mode, then "end". dicom-decode.sh alternates these rounds with pydicom's.
//   time FILES_TSV ROUNDS       ours only, for iterating on the codecs: after warm-up, the median over ROUNDS of each
//                               group's parse, fragment join and decode seconds, its fastest round, the median process
//                               CPU seconds (all threads; steadier than wall time on a busy machine), and the slowest files.
return args switch
{
    ["list", var oracle, var root] => List(oracle, root),
    ["serve", var files, var warmups] => Serve(files, int.Parse(warmups, CultureInfo.InvariantCulture)),
    ["time", var files, var rounds] => Time(files, int.Parse(rounds, CultureInfo.InvariantCulture)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DicomDecode list ORACLE_TSV DICOM_ROOT | serve FILES_TSV WARMUPS | time FILES_TSV ROUNDS");
    return 2;
}

static int List(string oracle, string root)
{
    var lines = File.ReadAllLines(oracle);
    var header = lines[0].Split('\t');
    int path = Array.IndexOf(header, "path"), status = Array.IndexOf(header, "status"), syntax = Array.IndexOf(header, "transfer_syntax");
    foreach (var line in lines.Skip(1))
    {
        var cells = line.Split('\t');
        if (cells.Length <= status || cells[status] != "ok") continue;
        var full = Path.Combine(root, cells[path]);
        try
        {
            var (bytes, frames) = DecodeRaw(File.ReadAllBytes(full), full);
            Console.WriteLine($"{full}\t{Group(cells[syntax])}\t{bytes}\t{frames}");
        }
        catch (Exception e) when (e is DicomException or CodecException)
        {
            Console.Error.WriteLine($"{cells[path]}: {e.Message}");
        }
    }
    return 0;
}

static string Group(string transferSyntax) => TransferSyntax.Lookup(transferSyntax) switch
{
    { IsKnown: false } => "other",
    { PixelEncoding: PixelEncoding.Native } => "native",
    { PixelEncoding: PixelEncoding.Rle } => "RLE",
    { PixelEncoding: PixelEncoding.Jpeg, IsLossy: true } => "JPEG lossy",
    { PixelEncoding: PixelEncoding.Jpeg } => "JPEG lossless",
    { PixelEncoding: PixelEncoding.JpegLs } => "JPEG-LS",
    { PixelEncoding: PixelEncoding.Jpeg2000 } => "JPEG 2000",
    _ => "other",
};

// What pydicom's pixel_array does: parse, then every frame into one array of the whole image.
static (long Bytes, int Frames) DecodeRaw(byte[] file, string source) => DecodeRawTimed(file, source, null);

// Stages, when given: [0] parse, [1] fragment join (GetFrame), [2] decode, in Stopwatch ticks.
static (long Bytes, int Frames) DecodeRawTimed(byte[] file, string source, long[]? stages)
{
    long start = Stopwatch.GetTimestamp();
    var dicom = DicomFile.Open(file, source);
    var pixels = dicom.GetPixelData();
    if (stages is not null) stages[0] += Stopwatch.GetTimestamp() - start;
    var decoder = FrameDecoders.ForTransferSyntax(dicom.TransferSyntax.Uid);
    var format = new FrameFormat(pixels.Rows, pixels.Columns, pixels.SamplesPerPixel, pixels.BitsAllocated, pixels.BitsStored,
        pixels.IsSigned, pixels.PhotometricInterpretation);
    int frameBytes = (int)pixels.FrameBytes;
    var array = new byte[(long)frameBytes * pixels.NumberOfFrames];
    for (int i = 0; i < pixels.NumberOfFrames; i++)
    {
        var frame = array.AsSpan(i * frameBytes, frameBytes);
        if (decoder is null)
        {
            pixels.GetNativeFrame(i, frame);
        }
        else if (stages is null)
        {
            decoder.Decode(pixels.GetFrame(i).Span, format, frame);
        }
        else
        {
            long joinStart = Stopwatch.GetTimestamp();
            var compressed = pixels.GetFrame(i);
            long decodeStart = Stopwatch.GetTimestamp();
            decoder.Decode(compressed.Span, format, frame);
            stages[1] += decodeStart - joinStart;
            stages[2] += Stopwatch.GetTimestamp() - decodeStart;
        }
    }
    return (array.LongLength, pixels.NumberOfFrames);
}

static int Time(string list, int rounds)
{
    var files = File.ReadAllLines(list).Select(l => l.Split('\t'))
        .Select(c => (Path: c[0], Group: c[1], Data: File.ReadAllBytes(c[0])))
        .ToList();
    for (int w = 0; w < 3; w++)
        foreach (var file in files) DecodeRaw(file.Data, file.Path);
    var groups = Enumerable.Range(0, files.Count).GroupBy(f => files[f].Group).ToList();
    var perFile = files.Select(_ => new List<long[]>()).ToList();
    var cpu = groups.Select(_ => new List<double>()).ToList();
    for (int r = 0; r < rounds; r++)
    {
        GC.Collect();
        for (int g = 0; g < groups.Count; g++)
        {
            double cpuStart = ProcessCpuSeconds();
            foreach (int f in groups[g])
            {
                var stages = new long[4];
                long start = Stopwatch.GetTimestamp();
                DecodeRawTimed(files[f].Data, files[f].Path, stages);
                stages[3] = Stopwatch.GetTimestamp() - start;
                perFile[f].Add(stages);
            }
            cpu[g].Add(ProcessCpuSeconds() - cpuStart);
        }
    }
    static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
    static double Seconds(long ticks) => ticks / (double)Stopwatch.Frequency;
    double total = 0, totalMin = 0, totalCpu = 0;
    Console.WriteLine("group            total s   parse s    join s  decode s     min s     cpu s");
    for (int g = 0; g < groups.Count; g++)
    {
        var group = groups[g];
        IEnumerable<double> Rounds(int s) => Enumerable.Range(0, rounds).Select(r => Seconds(group.Sum(f => perFile[f][r][s])));
        total += Median(Rounds(3));
        totalMin += Rounds(3).Min();
        totalCpu += Median(cpu[g]);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{group.Key,-14} {Median(Rounds(3)),9:F4} {Median(Rounds(0)),9:F4} {Median(Rounds(1)),9:F4} {Median(Rounds(2)),9:F4} {Rounds(3).Min(),9:F4} {Median(cpu[g]),9:F4}"));
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"all",-14} {total,9:F4} {"",29} {totalMin,9:F4} {totalCpu,9:F4}"));
    Console.WriteLine("slowest files (median s):");
    foreach (int f in Enumerable.Range(0, files.Count).OrderByDescending(f => Median(perFile[f].Select(s => Seconds(s[3])))).Take(8))
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {Median(perFile[f].Select(s => Seconds(s[3]))),8:F4}  {files[f].Group,-14} {files[f].Path}"));
    return 0;
}

static double ProcessCpuSeconds() => Cpu.ProcessSeconds();

static int Serve(string list, int warmups)
{
    var files = File.ReadAllLines(list).Select(l => l.Split('\t'))
        .Select(c => (Path: c[0], Group: c[1], Bytes: long.Parse(c[2], CultureInfo.InvariantCulture), Frames: int.Parse(c[3], CultureInfo.InvariantCulture), Data: File.ReadAllBytes(c[0])))
        .ToList();
    var all = new ImageReadOptions { Frames = FrameSelection.All };
    var modes = new (string Name, Action<byte[], string> Decode)[]
    {
        ("raw", (data, path) => DecodeRaw(data, path)),
        ("pipeline", (data, path) => ImageReader.Read(data, path, all)),
    };
    for (int w = 0; w < warmups; w++)
        foreach (var (_, decode) in modes)
            foreach (var file in files) decode(file.Data, file.Path);
    Console.WriteLine("ready");
    while (Console.ReadLine() is "round")
    {
        foreach (var (name, decode) in modes)
        {
            foreach (var group in files.GroupBy(f => f.Group))
            {
                GC.Collect();
                var clock = Stopwatch.StartNew();
                foreach (var file in group) decode(file.Data, file.Path);
                double seconds = clock.Elapsed.TotalSeconds;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"side\": \"MedSearch\", \"mode\": \"{name}\", \"group\": \"{group.Key}\", \"files\": {group.Count()}, \"frames\": {group.Sum(f => f.Frames)}, \"bytes\": {group.Sum(f => f.Bytes)}, \"seconds\": {seconds:R}}}"));
            }
        }
        Console.WriteLine("end");
    }
    return 0;
}

static partial class Cpu
{
    private const int ClockProcessCpuTimeId = 2;

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    public static double ProcessSeconds() => ClockGetTime(ClockProcessCpuTimeId, out var t) == 0 ? t.Seconds + t.Nanoseconds / 1e9 : double.NaN;
}
