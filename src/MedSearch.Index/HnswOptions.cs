namespace MedSearch.Index;

/// <summary>
/// HNSW graph parameters. The metric is always cosine: <see cref="IVectorIndex"/> promises cosine similarities.
/// The defaults come from the benchmark in <c>bench/</c> (100k clustered 512-d vectors; figures and reasons in
/// bench/RESULTS.md, "Index and store (issue 5)").
/// </summary>
public sealed record HnswOptions
{
    /// <summary>Links per node (HNSW's M). More: better recall, more memory, slower adds. Fixed once the graph is built.</summary>
    public int Connectivity { get; init; } = 16;

    /// <summary>
    /// Candidate list size while linking a new node (efConstruction). More: better graph, slower adds. 256: a graph
    /// built so costs a quarter more time than one of 128 and needs half the search expansion for the same recall
    /// (bench/RESULTS.md, "Graph parameters"). Saved with the index; a graph built with less is rebuilt on load.
    /// </summary>
    public int ExpansionAdd { get; init; } = 256;

    /// <summary>
    /// Candidate list size while searching (ef); at least k is used. More: better recall, slower searches.
    /// USearch does not save it with the index, so it is applied again on every load. 32: with I8 on a graph of
    /// <see cref="ExpansionAdd"/> 256, recall@10 0.996-0.998 at 1.4x the queries per second of ef 64 on a graph of
    /// 128 (0.997); 24 gives 0.990-0.992.
    /// </summary>
    public int ExpansionSearch { get; init; } = 32;

    /// <summary>
    /// How the graph stores vectors. Fixed once the graph is built: loading a file of another quantisation fails
    /// with <see cref="IndexFileException"/>, so changing it means a rebuild. I8: F32's recall once re-ranked,
    /// builds 3.7x faster, searches 2.6x faster and takes 40 % less memory (100k x 512, ef 64).
    /// </summary>
    public Quantization Quantization { get; init; } = Quantization.I8;

    /// <summary>Threads <see cref="HnswIndex.AddRange"/> builds with; more than the cores available would not finish sooner.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Most searches that run at once; more wait for one to finish. USearch needs one pre-allocated context per
    /// concurrent call (10-25 KiB once used, whatever the index's size). Not the core count: a server has more
    /// threads than cores, a search holding a context is preempted by them, and one waiting for a context blocks
    /// its thread. With one context per core, 3 % of searches under 16 clients on 2 cores waited, more than the
    /// 1 % a p99 latency is made of (bench/RESULTS.md, "Query service under load").
    /// </summary>
    public int ConcurrentSearches { get; init; } = Math.Max(64, 4 * Environment.ProcessorCount);

    internal void Validate()
    {
        // USearch's own floor: with fewer than 2 links per node the graph degenerates into chains.
        if (Connectivity < 2)
            throw new ArgumentOutOfRangeException(nameof(Connectivity), Connectivity, $"{nameof(Connectivity)} must be at least 2, got {Connectivity}");
        if (ExpansionAdd < 1)
            throw new ArgumentOutOfRangeException(nameof(ExpansionAdd), ExpansionAdd, $"{nameof(ExpansionAdd)} must be at least 1, got {ExpansionAdd}");
        if (ExpansionSearch < 1)
            throw new ArgumentOutOfRangeException(nameof(ExpansionSearch), ExpansionSearch, $"{nameof(ExpansionSearch)} must be at least 1, got {ExpansionSearch}");
        if (!Enum.IsDefined(Quantization))
            throw new ArgumentOutOfRangeException(nameof(Quantization), Quantization, $"{nameof(Quantization)} must be F32, F16 or I8, got {(int)Quantization}");
        if (Threads < 1)
            throw new ArgumentOutOfRangeException(nameof(Threads), Threads, $"{nameof(Threads)} must be at least 1, got {Threads}");
        if (ConcurrentSearches < 1)
            throw new ArgumentOutOfRangeException(nameof(ConcurrentSearches), ConcurrentSearches, $"{nameof(ConcurrentSearches)} must be at least 1, got {ConcurrentSearches}");
    }
}
