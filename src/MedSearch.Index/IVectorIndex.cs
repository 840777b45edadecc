namespace MedSearch.Index;

/// <summary>
/// Approximate nearest-neighbour search over fixed-length float vectors by cosine similarity, keyed by case id.
/// Derived data: whatever it holds can be rebuilt from the store. Implementations are thread-safe.
/// </summary>
public interface IVectorIndex : IDisposable
{
    int Dimensions { get; }

    long Count { get; }

    /// <summary>Bytes of memory the index holds: graph, vectors, key tables.</summary>
    long MemoryUsage { get; }

    /// <summary>Adds the vector of <paramref name="key"/>, replacing the vector it had.</summary>
    /// <exception cref="ArgumentException">Wrong length, a NaN or infinite component, or an all-zero vector.</exception>
    void Add(ulong key, ReadOnlySpan<float> vector);

    /// <summary>
    /// Adds many vectors at once, on several threads: the way to build or rebuild an index. Row <c>i</c> of
    /// <paramref name="vectors"/> (<see cref="Dimensions"/> floats each) belongs to <c>keys[i]</c>; keys already in
    /// the index have their vector replaced. Every row is checked before anything changes.
    /// </summary>
    /// <exception cref="ArgumentException">A row that <see cref="Add"/> would refuse, a key given twice, or a length mismatch.</exception>
    void AddRange(ReadOnlySpan<ulong> keys, ReadOnlySpan<float> vectors);

    /// <summary>Removes <paramref name="key"/>; false when it was not there. Searches never return it afterwards.</summary>
    bool Remove(ulong key);

    bool Contains(ulong key);

    /// <summary>
    /// Finds up to <c>keys.Length</c> nearest vectors to <paramref name="query"/> among those <paramref name="filter"/>
    /// accepts (all when null), writing them most similar first (cosine similarity, 1 = same direction) into
    /// <paramref name="keys"/> and <paramref name="similarities"/>, which must be at least as long. Returns how many
    /// were found. Selective filters are answered by exact scoring, others by a filtered graph walk.
    /// </summary>
    int Search(ReadOnlySpan<float> query, Span<ulong> keys, Span<float> similarities, IKeyFilter? filter = null);

    /// <summary>Like <see cref="Search"/>, but by scoring every (accepted) vector: exact, and linear in their number.</summary>
    int SearchExact(ReadOnlySpan<float> query, Span<ulong> keys, Span<float> similarities, IKeyFilter? filter = null);

    /// <summary>Writes the index to <paramref name="path"/> atomically: readers see the old file or the new one.</summary>
    void Save(string path);
}
