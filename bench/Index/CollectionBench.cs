using MedSearch.Bench;
using System.Diagnostics;
using System.Globalization;
using MedSearch.Engine;
using MedSearch.Storage.Records;

namespace MedSearch.Bench.Index;

/// <summary>
/// Filtered search through <see cref="Collection.Search"/> (one thread, k = 10) on a collection of clustered 512-d
/// cases whose modality passes 50, 10, 1 or 0.1 % of them: the catalog's posting lists handed to the index as
/// candidates, against the same filter as a predicate alone (the path before candidates). Prints a Markdown table.
/// The two sides run in alternating rounds and each keeps its best: on a shared machine another process's bursts
/// otherwise land on one side only.
/// </summary>
internal static class CollectionBench
{
    // Modality by a case's position in every run of 1,000: each value's share of the collection, in ‰.
    private static readonly (string Modality, int PerMille)[] Shares = [("CR", 500), ("MR", 100), ("CT", 10), ("PT", 1), ("US", 389)];
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(1);
    private const int MinimumQueries = 30;
    private const int Rounds = 5;

    public static void Run(string directory, int cases)
    {
        var data = Path.Combine(directory, $"collection-{cases}");
        var random = new Random(2026);
        var vectors = BenchCollection.Populate(data, cases, random, "file:bench/", ModalityOf);
        using var collection = Collection.Open(data, new CollectionOptions(), Console.Error.WriteLine);
        var queries = Enumerable.Range(0, 200)
            .Select(_ => new Query(vectors[random.Next(cases)].Select(v => v + 0.01f * ((float)random.NextDouble() - 0.5f)).ToArray()))
            .ToArray();

        Console.WriteLine($"{collection.Count:N0} cases x {collection.Dimensions}-d (bench/Common/ClusteredVectors), {collection.Encoder.Manifest.ModelId}; " +
                          $"Collection.Search, k = 10, one thread; {Environment.ProcessorCount} cores, .NET {Environment.Version}");
        Console.WriteLine();
        // The unfiltered search every vector query of the load benchmark makes, against scoring every case.
        var unfiltered = new SearchOptions();
        var all = queries.Select(q => Ids(collection.Search(q, unfiltered with { Exact = true }))).ToArray();
        int allExact = queries.Where((q, i) => Ids(collection.Search(q, unfiltered)).SequenceEqual(all[i])).Count();
        double qps = 0;
        for (int round = 0; round < Rounds; round++) qps = Math.Max(qps, Qps(collection, queries, unfiltered));
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        foreach (var query in queries) collection.Search(query, unfiltered);
        allocated = (GC.GetAllocatedBytesForCurrentThread() - allocated) / queries.Length;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Unfiltered: {qps:N0} QPS ({1e6 / qps:F0} us a query, {allocated / 1024.0:F1} KiB allocated), hits exact {allExact} / {queries.Length}."));
        Console.WriteLine();
        Console.WriteLine("| filter | passing | predicate QPS | candidates QPS | speed-up | predicate hits exact | candidate hits exact |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (modality, perMille) in Shares.Where(s => s.Modality != "US"))
        {
            var filter = new CaseFilter { Modalities = [modality] };
            var before = new SearchOptions { Filter = filter, WithoutCandidates = true };
            var after = new SearchOptions { Filter = filter };
            // Queries whose hits are those of scoring every case, through the predicate.
            var exact = queries.Select(q => Ids(collection.Search(q, before with { Exact = true }))).ToArray();
            int beforeExact = queries.Where((q, i) => Ids(collection.Search(q, before)).SequenceEqual(exact[i])).Count();
            int afterExact = queries.Where((q, i) => Ids(collection.Search(q, after)).SequenceEqual(exact[i])).Count();
            double qpsBefore = 0, qpsAfter = 0;
            for (int round = 0; round < Rounds; round++)
            {
                qpsBefore = Math.Max(qpsBefore, Qps(collection, queries, before));
                qpsAfter = Math.Max(qpsAfter, Qps(collection, queries, after));
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| modality = {modality} | {perMille / 10.0:0.#} % | {qpsBefore:N0} | {qpsAfter:N0} | {qpsAfter / qpsBefore:F1}x | {beforeExact} / {queries.Length} | {afterExact} / {queries.Length} |"));
        }
    }

    private static ulong[] Ids(SearchResult result) => [.. result.Neighbours.Select(n => n.Case.Id)];

    private static double Qps(Collection collection, Query[] queries, SearchOptions options)
    {
        foreach (var query in queries.Take(10)) collection.Search(query, options);
        var watch = Stopwatch.StartNew();
        int done = 0;
        while (done < MinimumQueries || (watch.Elapsed < Budget && done < queries.Length))
            collection.Search(queries[done++ % queries.Length], options);
        return done / watch.Elapsed.TotalSeconds;
    }

    // 761 is prime to 1,000, so every run of 1,000 cases visits each position once: exact shares, spread evenly.
    private static string ModalityOf(int i)
    {
        int position = (int)((long)i * 761 % 1000);
        foreach (var (modality, perMille) in Shares)
        {
            if (position < perMille) return modality;
            position -= perMille;
        }
        throw new UnreachableException();
    }
}
