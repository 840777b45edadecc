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
return args switch
{
    ["list", var oracle, var root] => List(oracle, root),
    ["serve", var files, var warmups] => Serve(files, int.Parse(warmups, CultureInfo.InvariantCulture)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DicomDecode list ORACLE_TSV DICOM_ROOT | serve FILES_TSV WARMUPS");
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
static (long Bytes, int Frames) DecodeRaw(byte[] file, string source)
{
    var dicom = DicomFile.Open(file, source);
    var pixels = dicom.GetPixelData();
    var decoder = FrameDecoders.ForTransferSyntax(dicom.TransferSyntax.Uid);
    var format = new FrameFormat(pixels.Rows, pixels.Columns, pixels.SamplesPerPixel, pixels.BitsAllocated, pixels.BitsStored,
        pixels.IsSigned, pixels.PhotometricInterpretation);
    int frameBytes = (int)pixels.FrameBytes;
    var array = new byte[(long)frameBytes * pixels.NumberOfFrames];
    for (int i = 0; i < pixels.NumberOfFrames; i++)
    {
        var frame = array.AsSpan(i * frameBytes, frameBytes);
        if (decoder is null) pixels.GetNativeFrame(i, frame);
        else decoder.Decode(pixels.GetFrame(i).Span, format, frame);
    }
    return (array.LongLength, pixels.NumberOfFrames);
}

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
