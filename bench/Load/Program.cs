using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Storage.Records;
using SkiaSharp;

// Load benchmark of issue 6: the real server on loopback over a collection of N cases, driven by 16 and 64
// concurrent gRPC clients (one connection each) for a fixed time per run, searching by vector and by image.
// Prints a markdown table: throughput, p50/p95/p99 latency and errors per run.
//   MedSearch.Bench.Load OUT [--cases 100000] [--seconds 30] [--clients 16,64]
var c = CultureInfo.InvariantCulture;
string Option(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
var output = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : throw new ArgumentException("usage: MedSearch.Bench.Load OUT [--cases N] [--seconds S] [--clients 16,64]");
int cases = int.Parse(Option("--cases", "100000"), c);
var duration = TimeSpan.FromSeconds(double.Parse(Option("--seconds", "30"), c));
var clientCounts = Option("--clients", "16,64").Split(',').Select(s => int.Parse(s, c)).ToArray();
var data = Path.Combine(output, $"data-{cases}");

var random = new Random(2026);
float[][] vectors = Populate(data, cases, random);

// The audit goes to its file, as in a deployment; a console line per request would measure the terminal.
Environment.SetEnvironmentVariable("Logging__LogLevel__Default", "Warning");
var audit = Path.Combine(output, "audit.jsonl");
File.Delete(audit);
var app = MedSearchServer.Build(new ServerOptions { DataPath = data, Urls = "http://127.0.0.1:0", AuditPath = audit });
await app.StartAsync();
var address = app.Urls.Single();
var images = Enumerable.Range(0, 32).Select(i => NoisePng(random, 256, 256)).ToArray();

Console.WriteLine($"| query | clients | requests | per second | p50 ms | p95 ms | p99 ms | errors |");
Console.WriteLine($"|---|---:|---:|---:|---:|---:|---:|---|");
foreach (var mode in new[] { "vector", "image" })
foreach (int clients in clientCounts)
{
    var run = await Drive(address, clients, duration, mode, vectors, images);
    Console.WriteLine(run);
}
await app.StopAsync();
await app.DisposeAsync();

static float[][] Populate(string data, int cases, Random random)
{
    using var collection = Collection.Open(data, new CollectionOptions(), Console.Error.WriteLine);
    int dims = collection.Dimensions;
    // Clustered unit vectors like image embeddings; the same seed gives the same collection, so a rerun reuses it.
    var centres = Enumerable.Range(0, 64).Select(_ => Unit(Enumerable.Range(0, dims).Select(_ => (float)random.NextDouble() - 0.5f).ToArray())).ToArray();
    var vectors = new float[cases][];
    for (int i = 0; i < cases; i++)
    {
        var centre = centres[random.Next(centres.Length)];
        vectors[i] = Unit(centre.Select(v => v + 0.3f * ((float)random.NextDouble() - 0.5f)).ToArray());
    }
    if (collection.Count == cases) return vectors;
    var watch = Stopwatch.StartNew();
    for (int i = 0; i < cases; i++)
    {
        var record = new CaseRecord { Id = CaseId.FromKey($"file:load/{i:D7}.png"), Key = $"file:load/{i:D7}.png", Source = $"load/{i:D7}.png", ModelId = collection.ModelId };
        record.Embedding.Add(vectors[i]);
        record.Metadata["modality"] = (i % 4) switch { 0 => "CT", 1 => "MR", 2 => "CR", _ => "US" };
        if (i % 3 == 0) record.Labels.Add("finding");
        collection.Put(record);
        if ((i + 1) % 20_000 == 0) Console.Error.WriteLine($"stored {i + 1:N0} cases, {watch.Elapsed.TotalSeconds:F0} s");
    }
    collection.Checkpoint();
    Console.Error.WriteLine($"stored {cases:N0} cases in {watch.Elapsed.TotalSeconds:F0} s");
    return vectors;
}

static async Task<string> Drive(string address, int clients, TimeSpan duration, string mode, float[][] vectors, byte[][] images)
{
    var latencies = new List<double>[clients];
    var errors = new Dictionary<StatusCode, int>();
    var stop = DateTime.UtcNow + duration;
    var watch = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, clients).Select(async client =>
    {
        var mine = latencies[client] = [];
        var random = new Random(client);
        using var channel = GrpcChannel.ForAddress(address);
        var search = new SearchService.SearchServiceClient(channel);
        while (DateTime.UtcNow < stop)
        {
            var request = new SearchRequest { K = 10 };
            if (mode == "vector")
            {
                var v = vectors[random.Next(vectors.Length)];
                request.Embedding = new Embedding { Values = { v.Select(x => x + 0.01f * ((float)random.NextDouble() - 0.5f)) } };
            }
            else
            {
                request.Image = ByteString.CopyFrom(images[random.Next(images.Length)]);
            }
            long start = Stopwatch.GetTimestamp();
            try
            {
                await search.SearchAsync(request);
                mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            catch (RpcException e)
            {
                lock (errors) errors[e.StatusCode] = errors.GetValueOrDefault(e.StatusCode) + 1;
            }
        }
    }));
    var all = latencies.SelectMany(l => l).Order().ToArray();
    double P(double q) => all.Length == 0 ? double.NaN : all[Math.Min(all.Length - 1, (int)(q * all.Length))];
    var errorText = errors.Count == 0 ? "0" : string.Join(", ", errors.Select(e => $"{e.Value} {e.Key}"));
    return string.Create(CultureInfo.InvariantCulture,
        $"| {mode} | {clients} | {all.Length:N0} | {all.Length / watch.Elapsed.TotalSeconds:F0} | {P(0.50):F2} | {P(0.95):F2} | {P(0.99):F2} | {errorText} |");
}

static float[] Unit(float[] v)
{
    float norm = MathF.Sqrt(v.Sum(x => x * x));
    return v.Select(x => x / norm).ToArray();
}

static byte[] NoisePng(Random random, int width, int height)
{
    using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
    var pixels = bitmap.GetPixelSpan();
    for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)((i % width + i / width + random.Next(64)) % 256);
    using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
    return encoded.ToArray();
}
