using System.Diagnostics;
using MedSearch.Index;

namespace MedSearch.Bench.Index;

/// <summary>
/// Recall@10 and single-thread QPS of <see cref="HnswIndex"/> through its public API, per quantisation and search
/// expansion, then filtered search on both sides of the planner's threshold. Prints Markdown tables.
/// </summary>
internal static class IndexBench
{
    private static readonly int[] Expansions = [16, 24, 32, 48, 64, 128, 256];
    private static readonly double[] FilterFractions = [0.5, 0.3, 0.2, 0.15, 0.12, 0.1, 0.07, 0.05, 0.02, 0.01, 0.001];

    // A pass over the queries stops after this much time (slow in-graph searches at tiny filter shares would
    // otherwise take minutes), once it has run at least MinimumQueries.
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);
    private const int MinimumQueries = 100;

    public static void Run(string directory, int threads, Quantization[] quantizations)
    {
        var data = Dataset.Load(directory);
        var truth = Npy.Read<long>(Path.Combine(directory, "truth.npy"), out _, out _);
        var keys = new ulong[data.Count];
        for (int i = 0; i < keys.Length; i++) keys[i] = (ulong)i;
        var defaults = new HnswOptions();

        Console.WriteLine($"{data.Count:N0} x {data.Dimensions} vectors, {data.QueryCount:N0} queries, k = {Dataset.K}; " +
                          $"builds on {threads} threads, searches on one; {Environment.ProcessorCount} cores, .NET {Environment.Version}");
        Console.WriteLine();
        Console.WriteLine("| index | quantisation | ef search | recall@10 | QPS (1 thread) | build s | memory MiB | file MiB |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        // Rows bench/index_hnswlib.py wrote in the same run, on the same vectors.
        var peer = Path.Combine(directory, "hnswlib.md");
        if (File.Exists(peer)) foreach (var line in File.ReadLines(peer)) Console.WriteLine(line);
        var built = new Dictionary<Quantization, string>();
        foreach (var quantization in quantizations)
        {
            var options = defaults with { Quantization = quantization, Threads = threads };
            var path = Path.Combine(directory, $"index-{quantization}.usearch");
            var (buildSeconds, memory, simd) = Build(path, options, keys, data);
            built[quantization] = path;
            long fileBytes = new FileInfo(path).Length;
            foreach (int ef in Expansions)
            {
                using var index = HnswIndex.Load(path, data.Dimensions, options with { ExpansionSearch = ef });
                var (recall, qps) = Measure(index, data, truth, null, HnswIndex.Plan.Auto);
                Console.WriteLine($"| MedSearch ({simd}) | {quantization} | {ef} | {recall:F4} | {qps:N0} | {buildSeconds:F1} | {memory / 1048576.0:F0} | {fileBytes / 1048576.0:F0} |");
            }
        }

        RunFiltered(data, truth, threads, quantizations, built);
    }

    /// <summary>
    /// Only the filtered-search table, on the index files an earlier <c>index</c> run saved in <paramref name="directory"/>
    /// (bench/index.sh makes them): minutes instead of the full run's twenty.
    /// </summary>
    public static void RunFiltered(string directory, int threads, Quantization[] quantizations)
    {
        var data = Dataset.Load(directory);
        var truth = Npy.Read<long>(Path.Combine(directory, "truth.npy"), out _, out _);
        Console.WriteLine($"{data.Count:N0} x {data.Dimensions} vectors, {data.QueryCount:N0} queries, k = {Dataset.K}; " +
                          $"index files from {directory}; searches on one thread; {Environment.ProcessorCount} cores, .NET {Environment.Version}");
        var built = new Dictionary<Quantization, string>();
        var keys = new ulong[data.Count];
        for (int i = 0; i < keys.Length; i++) keys[i] = (ulong)i;
        foreach (var quantization in quantizations)
        {
            var options = new HnswOptions { Quantization = quantization, Threads = threads };
            var path = built[quantization] = Path.Combine(directory, $"index-{quantization}.usearch");
            try
            {
                HnswIndex.Load(path, data.Dimensions, options).Dispose();
            }
            catch (IndexFileException e)
            {
                // Missing, or written by a build with another file format: the graph is built again, as `index` would.
                Console.Error.WriteLine($"{e.Message}; building it");
                using var index = HnswIndex.Create(data.Dimensions, options);
                index.AddRange(keys, data.Vectors);
                index.Save(path);
            }
        }
        RunFiltered(data, truth, threads, quantizations, built);
    }

    private static void RunFiltered(Dataset data, long[] truth, int threads, Quantization[] quantizations, Dictionary<Quantization, string> built)
    {
        var defaults = new HnswOptions();
        Console.WriteLine();
        Console.WriteLine($"Filtered search, ef search {defaults.ExpansionSearch}: a random share of the keys passes (a KeySet). " +
                          $"'graph' is USearch's filtered walk, 'exact' scores the passing keys, 'planner' is what Search picks " +
                          $"(exact at or below {HnswIndex.KeySetExactSearchMaxPassingFraction:P0} for a KeySet).");
        Console.WriteLine();
        Console.WriteLine("| quantisation | passing | plan | recall@10 | QPS (1 thread) |");
        Console.WriteLine("|---|---:|---|---:|---:|");
        var random = new Random(7);
        var filters = FilterFractions.Select(fraction =>
        {
            var rows = Enumerable.Range(0, data.Count).OrderBy(_ => random.Next()).Take((int)Math.Round(fraction * data.Count)).Order().ToArray();
            return (Fraction: fraction, Filter: new KeySet(rows.Select(r => (ulong)r)), Truth: data.GroundTruth(rows));
        }).ToList();
        var memory = new List<string>();
        // The default quantisation and F32; F16 sits between them.
        foreach (var quantization in quantizations.Where(q => q == defaults.Quantization || q == Quantization.F32))
        {
            using var index = HnswIndex.Load(built[quantization], data.Dimensions, defaults with { Quantization = quantization, Threads = threads });
            memory.Add($"{quantization} {index.MemoryUsage / 1048576.0:F0} MiB");
            foreach (var (fraction, filter, filteredTruth) in filters)
            {
                foreach (var plan in new[] { HnswIndex.Plan.Graph, HnswIndex.Plan.Exact, HnswIndex.Plan.Auto })
                {
                    var (recall, qps) = Measure(index, data, filteredTruth, filter, plan);
                    var name = plan switch { HnswIndex.Plan.Graph => "graph", HnswIndex.Plan.Exact => "exact", _ => "**planner**" };
                    Console.WriteLine($"| {quantization} | {fraction:P1} | {name} | {recall:F4} | {qps:N0} |");
                }
            }
        }
        Console.WriteLine();
        Console.WriteLine($"Memory (HnswIndex.MemoryUsage): {string.Join(", ", memory)}.");
    }

    /// <summary>
    /// Recall@10 against <paramref name="truth"/> and queries per second, one query at a time on this thread. The
    /// machine is shared, so the query set runs up to three times and the fastest pass counts (the one least
    /// disturbed; the first also warms the JIT up).
    /// </summary>
    /// <summary>
    /// Graph parameters against search cost: I8 graphs built with each (M, ef construction), searched at several ef.
    /// What the defaults in <see cref="HnswOptions"/> were chosen from.
    /// </summary>
    public static void Sweep(string directory, int threads, (int M, int EfAdd)[] graphs, int[] expansions)
    {
        var data = Dataset.Load(directory);
        var truth = Npy.Read<long>(Path.Combine(directory, "truth.npy"), out _, out _);
        var keys = new ulong[data.Count];
        for (int i = 0; i < keys.Length; i++) keys[i] = (ulong)i;
        Console.WriteLine($"{data.Count:N0} x {data.Dimensions} vectors, {data.QueryCount:N0} queries, k = {Dataset.K}; I8; " +
                          $"builds on {threads} threads, searches on one; {Environment.ProcessorCount} cores, .NET {Environment.Version}");
        Console.WriteLine();
        Console.WriteLine("| M | ef construction | ef search | recall@10 | QPS (1 thread) | build s | memory MiB |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (m, efAdd) in graphs)
        {
            var options = new HnswOptions { Connectivity = m, ExpansionAdd = efAdd, Threads = threads };
            var path = Path.Combine(directory, $"sweep-M{m}-ef{efAdd}.usearch");
            var (buildSeconds, memory, _) = Build(path, options, keys, data);
            foreach (int ef in expansions)
            {
                using var index = HnswIndex.Load(path, data.Dimensions, options with { ExpansionSearch = ef });
                var (recall, qps) = Measure(index, data, truth, null, HnswIndex.Plan.Auto);
                Console.WriteLine($"| {m} | {efAdd} | {ef} | {recall:F4} | {qps:N0} | {buildSeconds:F1} | {memory / 1048576.0:F0} |");
            }
            File.Delete(path);
        }
    }

    /// <summary>Builds an index of the data set with <paramref name="options"/> and saves it to <paramref name="path"/>.</summary>
    private static (double BuildSeconds, long Memory, string Simd) Build(string path, HnswOptions options, ulong[] keys, Dataset data)
    {
        using var index = HnswIndex.Create(data.Dimensions, options);
        var watch = Stopwatch.StartNew();
        index.AddRange(keys, data.Vectors);
        var result = (watch.Elapsed.TotalSeconds, index.MemoryUsage, index.HardwareAcceleration);
        index.Save(path);
        return result;
    }

    private static (double Recall, double Qps) Measure(HnswIndex index, Dataset data, long[] truth, IKeyFilter? filter, HnswIndex.Plan plan)
    {
        var keys = new ulong[Dataset.K];
        var similarities = new float[Dataset.K];
        double recall = 0, best = 0;
        var total = Stopwatch.StartNew();
        for (int pass = 0; pass < 3 && (pass == 0 || total.Elapsed < Budget); pass++)
        {
            int hits = 0, queries = 0;
            var watch = Stopwatch.StartNew();
            for (; queries < data.QueryCount && (queries < MinimumQueries || watch.Elapsed < Budget); queries++)
            {
                int found = index.Search(data.Query(queries), keys, similarities, filter, plan);
                var expected = truth.AsSpan(queries * Dataset.K, Dataset.K);
                for (int i = 0; i < found; i++)
                    if (expected.Contains((long)keys[i])) hits++;
            }
            best = Math.Max(best, queries / watch.Elapsed.TotalSeconds);
            if (pass == 0) recall = hits / (double)(queries * Dataset.K);
        }
        return (recall, best);
    }
}
