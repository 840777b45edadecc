namespace MedSearch.Index;

/// <summary>
/// Approximate nearest-neighbour search over fixed-length float vectors by cosine similarity, keyed by case id.
/// Derived data: whatever it holds can be rebuilt from the store. Implementations are thread-safe.
/// </summary>
public interface IVectorIndex : IDisposable
{
    int Dimensions { get; }

    long Count { get; }

    /// <summary>Adds the vector of <paramref name="key"/>, replacing the vector it had.</summary>
    /// <exception cref="ArgumentException">Wrong length, a NaN or infinite component, or an all-zero vector.</exception>
    void Add(ulong key, ReadOnlySpan<float> vector);

    /// <summary>Removes <paramref name="key"/>; false when it was not there.</summary>
    bool Remove(ulong key);

    bool Contains(ulong key);

    /// <summary>
    /// Finds up to <c>keys.Length</c> nearest vectors to <paramref name="query"/>, writing them most similar first
    /// (cosine similarity, 1 = same direction) into <paramref name="keys"/> and <paramref name="similarities"/>,
    /// which must be at least as long. Returns how many were found.
    /// </summary>
    int Search(ReadOnlySpan<float> query, Span<ulong> keys, Span<float> similarities);

    /// <summary>Writes the index to <paramref name="path"/> atomically: readers see the old file or the new one.</summary>
    void Save(string path);
}
