using MedSearch.Bench.Index;
using MedSearch.Index;

// Usage (bench/index.sh runs all of it):
//   generate DIR [--count N] [--queries N] [--dimensions N] [--seed N]   vectors, queries and exact ground truth as .npy
//   index DIR [--threads N] [--quantization F32,F16,I8]                  recall and QPS tables (Markdown) on stdout
//   filtered DIR [--threads N] [--quantization F32,I8]                   only the filtered-search table, on the index files an index run saved
//   sweep DIR [--graphs 16:128,16:256,...] [--ef 24,32,...]            I8 recall and QPS per M, ef construction and ef search
//   store DIR --count N [--threads N] [--header]                         store throughput, checkpoint, recovery, compaction
//   collection DIR [--cases N]                                           filtered Collection.Search, candidates against predicate
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: generate|index|filtered|store|collection DIR [options]; see bench/index.sh");
    return 2;
}

string command = args[0], directory = args[1];
string? Option(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
int IntOption(string name, int fallback) => Option(name) is { } value ? int.Parse(value) : fallback;
int threads = IntOption("--threads", Environment.ProcessorCount);

switch (command)
{
    case "generate":
    {
        var data = Dataset.Generate(IntOption("--count", 100_000), IntOption("--queries", 1000), IntOption("--dimensions", 512), IntOption("--seed", 42));
        data.Save(directory);
        Npy.Write<long>(Path.Combine(directory, "truth.npy"), data.GroundTruth(), data.QueryCount, Dataset.K);
        Console.Error.WriteLine($"wrote {data.Count:N0} x {data.Dimensions} vectors, {data.QueryCount:N0} queries and their exact top-{Dataset.K} to {directory}");
        return 0;
    }
    case "index":
    {
        var quantizations = (Option("--quantization") ?? "F32,F16,I8").Split(',').Select(Enum.Parse<Quantization>).ToArray();
        IndexBench.Run(directory, threads, quantizations);
        return 0;
    }
    case "filtered":
    {
        var quantizations = (Option("--quantization") ?? "F32,I8").Split(',').Select(Enum.Parse<Quantization>).ToArray();
        IndexBench.RunFiltered(directory, threads, quantizations);
        return 0;
    }
    case "sweep":
    {
        var graphs = (Option("--graphs") ?? "16:128,16:256,24:128,32:128").Split(',')
            .Select(g => g.Split(':')).Select(g => (int.Parse(g[0]), int.Parse(g[1]))).ToArray();
        var expansions = (Option("--ef") ?? "24,32,40,48,64").Split(',').Select(int.Parse).ToArray();
        IndexBench.Sweep(directory, threads, graphs, expansions);
        return 0;
    }
    case "store":
        if (args.Contains("--header")) StoreBench.PrintHeader();
        StoreBench.Run(directory, IntOption("--count", 100_000), threads);
        return 0;
    case "collection":
        CollectionBench.Run(directory, IntOption("--cases", 100_000));
        return 0;
    default:
        Console.Error.WriteLine($"unknown command {command}: expected generate, index, filtered, store or collection");
        return 2;
}
