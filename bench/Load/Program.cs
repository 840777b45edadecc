using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Bench;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Storage.Records;
using SkiaSharp;

// Load benchmark of issue 6: the real server on loopback over a collection of N cases (sized like DICOM cases, see
// BenchCollection), driven by 16 and 64 concurrent gRPC clients (one connection each) for a fixed time per run,
// searching by vector and by image.
// Prints a markdown table: throughput, p50/p95/p99 latency as the clients see it and as the server's audit log
// records it (the handler's own time, without HTTP/2 and queueing), and errors per run.
//   MedSearch.Bench.Load OUT [--cases 100000] [--seconds 30] [--clients 16,64] [--modes vector,image] [--allocations]
// --allocations also prints, after each row, the types allocated during it (the runtime's allocation ticks, one
// sample per ~100 KB), to see what the per-request allocations are made of.
// Also the index recovery figures of issue 5 on the same collection: how long opening takes after a crash when the
// saved index is brought up to date by replaying the store's later changes, against rebuilding it from the store.
//   MedSearch.Bench.Load recovery OUT [--cases 100000] [--changes 1000,10000]
var c = CultureInfo.InvariantCulture;
string Option(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;

if (args is ["recovery", var recoveryOut, ..])
{
    await Recovery(recoveryOut, int.Parse(Option("--cases", "100000"), c), Option("--changes", "1000,10000").Split(',').Select(s => int.Parse(s, c)).ToArray());
    return;
}

var output = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : throw new ArgumentException("usage: MedSearch.Bench.Load OUT [--cases N] [--seconds S] [--clients 16,64] [--modes vector,image]");
int cases = int.Parse(Option("--cases", "100000"), c);
var duration = TimeSpan.FromSeconds(double.Parse(Option("--seconds", "30"), c));
var clientCounts = Option("--clients", "16,64").Split(',').Select(s => int.Parse(s, c)).ToArray();
var modes = Option("--modes", "vector,image").Split(',');
var data = Path.Combine(output, $"data-{cases}");
using var allocations = args.Contains("--allocations") ? new AllocationTicks() : null;

var random = new Random(2026);
float[][] vectors = BenchCollection.Populate(data, cases, random, "file:load/", ModalityOf);

// The audit goes to its file, as in a deployment; a console line per request would measure the terminal.
Environment.SetEnvironmentVariable("Logging__LogLevel__Default", "Warning");
var audit = Path.Combine(output, "audit.jsonl");
File.Delete(audit);
var app = MedSearchServer.Build(new ServerOptions { DataPath = data, Urls = "http://127.0.0.1:0", AuditPath = audit });
await app.StartAsync();
var address = app.Urls.Single();
var images = Images(random);

// CPU per request (server and clients together, user + kernel) holds better than latency on a shared machine:
// other work there takes cores, not this process's CPU time. So do the bytes allocated per request, the gen-0 collections
// per second and the time they paused the process (every pause is in the latency of the requests then in flight).
Console.WriteLine($"| query | clients | requests | per second | p50 ms | p95 ms | p99 ms | server p50 ms | server p99 ms | CPU ms per request | KiB allocated per request | collections per second | GC pause ms per second | errors |");
Console.WriteLine($"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
foreach (var mode in modes)
{
    // Untimed: the JIT's tiers, the thread pool's size and the page cache settle before the first row is measured.
    await Drive(address, clientCounts.Max(), TimeSpan.FromSeconds(5), mode, vectors, images);
    foreach (int clients in clientCounts)
    {
        long auditStart = new FileInfo(audit).Length;
        var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        long allocatedStart = GC.GetTotalAllocatedBytes(), collectionsStart = GC.CollectionCount(0);
        var pausedStart = GC.GetTotalPauseDuration();
        allocations?.Clear();
        var (row, errors) = await Drive(address, clients, duration, mode, vectors, images);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuStart;
        long allocated = GC.GetTotalAllocatedBytes() - allocatedStart, collections = GC.CollectionCount(0) - collectionsStart;
        var paused = GC.GetTotalPauseDuration() - pausedStart;
        var server = ServerLatencies(audit, auditStart);
        double S(double q) => server.Length == 0 ? double.NaN : server[Math.Min(server.Length - 1, (int)(q * server.Length))];
        Console.WriteLine(string.Create(c, $"| {mode} | {clients} | {row} | {S(0.50):F2} | {S(0.99):F2} | {cpu.TotalMilliseconds / Math.Max(1, server.Length):F2} | {allocated / 1024.0 / Math.Max(1, server.Length):F1} | {collections / duration.TotalSeconds:F1} | {paused.TotalMilliseconds / duration.TotalSeconds:F1} | {errors} |"));
        allocations?.Print(server.Length, 15);
    }
}
await app.StopAsync();
await app.DisposeAsync();

static async Task Recovery(string output, int cases, int[] changeCounts)
{
    var c = CultureInfo.InvariantCulture;
    // A copy of the load benchmark's collection when there is one (storing 100k cases one by one takes minutes).
    var data = Path.Combine(output, $"recovery-{cases}");
    if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
    var source = Path.Combine(output, $"data-{cases}");
    if (Directory.Exists(source)) await Process.Start("cp", ["-r", source, data]).WaitForExitAsync();
    var vectors = BenchCollection.Populate(data, cases, new Random(2026), "file:load/", ModalityOf);

    (TimeSpan Took, string Log) Open(Action<Collection>? then = null)
    {
        var log = new List<string>();
        var watch = Stopwatch.StartNew();
        using var collection = Collection.Open(data, new CollectionOptions(), log.Add);
        var took = watch.Elapsed;
        if (collection.IndexedCount != collection.Count) throw new InvalidOperationException($"{collection.IndexedCount} indexed, {collection.Count} stored");
        then?.Invoke(collection);
        return (took, string.Join("; ", log.Where(l => l.StartsWith("index:", StringComparison.Ordinal) && !l.Contains("rebuilt ", StringComparison.Ordinal))));
    }

    Console.WriteLine($"| changes since the index was saved | open, index loaded as saved s | open with replay s | open with rebuild s | replay log line |");
    Console.WriteLine($"|---:|---:|---:|---:|---|");
    var random = new Random(7);
    foreach (int changes in changeCounts)
    {
        // A clean start (index as saved, nothing to replay), then changes checkpointed without saving the index: a crash.
        var clean = Open(collection => collection.Checkpoint(saveIndex: true));
        Open(collection =>
        {
            for (int i = 0; i < changes; i++)
            {
                // Half replace stored cases' vectors, half are new cases.
                int n = i % 2 == 0 ? random.Next(cases) : cases + random.Next(changes * 10);
                var key = $"file:load/{n:D7}.png";
                var record = new CaseRecord { Id = CaseId.FromKey(key), Key = key, Source = key, ModelId = collection.ModelId };
                record.Embedding.Add(vectors[random.Next(cases)].Select(v => v + 0.01f * ((float)random.NextDouble() - 0.5f)));
                collection.Put(record);
            }
            collection.Checkpoint(saveIndex: false);
        });
        var replay = Open();
        // The same state again from the store alone: no saved index.
        foreach (var file in Directory.GetFiles(Path.Combine(data, "hnsw"))) File.Delete(file);
        var rebuild = Open(collection => collection.Checkpoint(saveIndex: true));
        Console.WriteLine(string.Create(c,
            $"| {changes:N0} | {clean.Took.TotalSeconds:F1} | {replay.Took.TotalSeconds:F1} | {rebuild.Took.TotalSeconds:F1} | {replay.Log} |"));
    }
}

// The server's own latency of each search call since byte <paramref name="from"/> of the audit file, sorted.
static double[] ServerLatencies(string audit, long from)
{
    using var stream = new FileStream(audit, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
    stream.Seek(from, SeekOrigin.Begin);
    using var reader = new StreamReader(stream);
    var latencies = new List<double>();
    while (reader.ReadLine() is { } line)
    {
        using var entry = System.Text.Json.JsonDocument.Parse(line);
        if (entry.RootElement.GetProperty("method").GetString()!.EndsWith("/Search", StringComparison.Ordinal))
            latencies.Add(entry.RootElement.GetProperty("latency_ms").GetDouble());
    }
    return latencies.Order().ToArray();
}

static byte[][] Images(Random random) => Enumerable.Range(0, 32).Select(i => NoisePng(random, 256, 256)).ToArray();

static string ModalityOf(int i) => (i % 4) switch { 0 => "CT", 1 => "MR", 2 => "CR", _ => "US" };

// Client-side figures as table cells (requests, per second, p50, p95, p99), and the errors.
static async Task<(string Cells, string Errors)> Drive(string address, int clients, TimeSpan duration, string mode, float[][] vectors, byte[][] images)
{
    // Query vectors made before the clock starts, so that the clients' share of the CPU is the gRPC call alone: a
    // stored vector with a little noise, as a near-duplicate image's embedding would be.
    var noise = new Random(1);
    var queries = Enumerable.Range(0, 4096).Select(_ => vectors[noise.Next(vectors.Length)])
        .Select(v => new Embedding { Values = { v.Select(x => x + 0.01f * ((float)noise.NextDouble() - 0.5f)) } })
        .ToArray();
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
                request.Embedding = queries[random.Next(queries.Length)];
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
    return (string.Create(CultureInfo.InvariantCulture,
        $"{all.Length:N0} | {all.Length / watch.Elapsed.TotalSeconds:F0} | {P(0.50):F2} | {P(0.95):F2} | {P(0.99):F2}"), errorText);
}

static byte[] NoisePng(Random random, int width, int height)
{
    using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
    var pixels = bitmap.GetPixelSpan();
    for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)((i % width + i / width + random.Next(64)) % 256);
    using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
    return encoded.ToArray();
}

/// <summary>The runtime's allocation ticks (a sample every ~100 KB allocated, with the type), summed by type.</summary>
internal sealed class AllocationTicks : System.Diagnostics.Tracing.EventListener
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _bytes = new();

    public void Clear() => _bytes.Clear();

    /// <summary>The <paramref name="top"/> types by bytes, per request of <paramref name="requests"/>.</summary>
    public void Print(int requests, int top)
    {
        foreach (var (type, bytes) in _bytes.OrderByDescending(kv => kv.Value).Take(top))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {bytes / 1024.0 / Math.Max(1, requests),8:F2} KiB per request  {type}"));
    }

    protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
    {
        // Keyword 0x1: GC events, among them GCAllocationTick at verbose level.
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
    }

    protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
    {
        if (e.EventName != "GCAllocationTick_V4" || e.Payload is null || e.PayloadNames is null) return;
        long amount = Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("AllocationAmount64")], CultureInfo.InvariantCulture);
        _bytes.AddOrUpdate((string)e.Payload[e.PayloadNames.IndexOf("TypeName")]!, amount, (_, sum) => sum + amount);
    }
}
