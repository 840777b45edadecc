using System.Diagnostics;
using System.Globalization;
using MedSearch.Cluster;
using MedSearch.Engine;
using MedSearch.Storage.Records;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.TestingHost;

// Cluster benchmark of issue 9: the same N cases on one node and in a cluster of 8 shards served by 1 and by 3
// Orleans silos in this process, queried by C concurrent callers for S seconds each (HNSW search, k = 10, by
// vector). Silos, gateway and callers share this machine's cores, so 3 silos here measure the fan-out and merge
// cost, not the added capacity of 3 machines. Prints a markdown table and each shard's size for the sizing in
// docs/scaling.md.
//   MedSearch.Bench.Cluster OUT [--cases 100000] [--seconds 20] [--clients 16]
var c = CultureInfo.InvariantCulture;
string Option(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
var output = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : throw new ArgumentException("usage: MedSearch.Bench.Cluster OUT [--cases N] [--seconds S] [--clients C]");
int cases = int.Parse(Option("--cases", "100000"), c);
var duration = TimeSpan.FromSeconds(double.Parse(Option("--seconds", "20"), c));
int clients = int.Parse(Option("--clients", "16"), c);
const int Shards = 8;

var random = new Random(2026);
var single = new LocalCaseSpace(Collection.Open(Path.Combine(output, $"single-{cases}"), new CollectionOptions()));
var vectors = Vectors(cases, single.Dimensions, random);
if (single.Collection.Count != cases) Store(cases, vectors, single.Collection, _ => single.Collection);
var layout = ClusterLayout.CreateOrOpen(Path.Combine(output, $"cluster-{cases}"), Shards, volumes: null);
using (var host = new ShardHost(layout, new CollectionOptions(), NullLogger<ShardHost>.Instance))
{
    var shards = new LocalCaseSpace[Shards];
    for (int s = 0; s < Shards; s++) shards[s] = await host.OpenAsync(s, CancellationToken.None);
    if (shards.Sum(s => s.Collection.Count) != cases)
        Store(cases, vectors, single.Collection, key => shards[layout.ShardOfRoutingKey(key)].Collection);
    Console.WriteLine($"| shard | cases | index MB | store MB |");
    Console.WriteLine($"|---:|---:|---:|---:|");
    for (int s = 0; s < Shards; s++)
    {
        var stats = shards[s].Collection.Stats();
        Console.WriteLine($"| {s} | {stats.Cases:N0} | {stats.IndexMemoryBytes / 1e6:F1} | {stats.StoreBytes / 1e6:F1} |");
        host.Close(s);
    }
    var whole = single.Collection.Stats();
    Console.WriteLine($"| one node | {whole.Cases:N0} | {whole.IndexMemoryBytes / 1e6:F1} | {whole.StoreBytes / 1e6:F1} |");
    Console.WriteLine($"\nindex settings: {whole.Index.Quantization}, M {whole.Index.Connectivity}, ef {whole.Index.ExpansionSearch}; {single.Dimensions}-d\n");
}

var queries = Enumerable.Range(0, 256).Select(i => new Query(Perturb(vectors[random.Next(cases)], random))).ToArray();
Console.WriteLine($"| setup | callers | queries | per second | p50 ms | p95 ms | p99 ms | partial |");
Console.WriteLine($"|---|---:|---:|---:|---:|---:|---:|---:|");
Console.WriteLine(await Drive("one node (no Orleans)", single, queries, clients, duration));
foreach (int silos in new[] { 1, 3 })
{
    var builder = new InProcessTestClusterBuilder((short)silos);
    builder.ConfigureSilo((_, silo) => silo.AddMedSearchShards(layout, new CollectionOptions()));
    builder.ConfigureClient(client => client.Services.AddMedSearchSerialization());
    await using var cluster = builder.Build();
    await cluster.DeployAsync();
    var space = ClusterHosting.CaseSpace(cluster.Client, layout, single.Queries.Encoder, new CollectionOptions(), new ShardTimeouts());
    await space.SearchAsync(queries[0], new SearchOptions { K = 10 }, CancellationToken.None); // activates (opens) every shard
    Console.WriteLine(await Drive($"{silos} silo(s), {Shards} shards", space, queries, 1, duration / 2));
    Console.WriteLine(await Drive($"{silos} silo(s), {Shards} shards", space, queries, clients, duration));
}
single.Dispose();

static async Task<string> Drive(string setup, ICaseSpace space, Query[] queries, int clients, TimeSpan duration)
{
    var latencies = new List<double>[clients];
    int partial = 0;
    var stop = DateTime.UtcNow + duration;
    var watch = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
    {
        var mine = latencies[client] = [];
        for (int i = client; DateTime.UtcNow < stop; i += clients)
        {
            long start = Stopwatch.GetTimestamp();
            var result = await space.SearchAsync(queries[i % queries.Length], new SearchOptions { K = 10 }, CancellationToken.None);
            mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            if (result.Partial) Interlocked.Increment(ref partial);
        }
    })));
    var all = latencies.SelectMany(l => l).Order().ToArray();
    double P(double q) => all[Math.Min(all.Length - 1, (int)(q * all.Length))];
    return string.Create(CultureInfo.InvariantCulture,
        $"| {setup} | {clients} | {all.Length:N0} | {all.Length / watch.Elapsed.TotalSeconds:F0} | {P(0.5):F2} | {P(0.95):F2} | {P(0.99):F2} | {partial} |");
}

static float[][] Vectors(int cases, int dims, Random random)
{
    // Clustered unit vectors like image embeddings (as bench/Load); the same seed gives the same cases, so reruns reuse the stores.
    var centres = Enumerable.Range(0, 64).Select(_ => Unit(Enumerable.Range(0, dims).Select(_ => (float)random.NextDouble() - 0.5f).ToArray())).ToArray();
    return Enumerable.Range(0, cases).Select(_ => Unit(centres[random.Next(centres.Length)].Select(v => v + 0.3f * ((float)random.NextDouble() - 0.5f)).ToArray())).ToArray();
}

static float[] Perturb(float[] v, Random random) => Unit(v.Select(x => x + 0.05f * ((float)random.NextDouble() - 0.5f)).ToArray());

static float[] Unit(float[] v)
{
    float norm = MathF.Sqrt(v.Sum(x => x * x));
    return v.Select(x => x / norm).ToArray();
}

static void Store(int cases, float[][] vectors, Collection model, Func<string, Collection> target)
{
    var watch = Stopwatch.StartNew();
    var touched = new HashSet<Collection>();
    for (int i = 0; i < cases; i++)
    {
        var key = $"file:bench/{i:D7}.png";
        var record = new CaseRecord { Id = CaseId.FromKey(key), Key = key, Source = key[5..], ModelId = model.ModelId };
        record.Embedding.Add(vectors[i]);
        if (i % 3 == 0) record.Labels.Add("finding");
        var collection = target(key);
        collection.Put(record);
        touched.Add(collection);
    }
    foreach (var collection in touched) collection.Checkpoint();
    Console.Error.WriteLine($"stored {cases:N0} cases in {watch.Elapsed.TotalSeconds:F0} s");
}
