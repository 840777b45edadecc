namespace MedSearch.Index;

/// <summary>Which keys a filtered search may return.</summary>
/// <remarks>
/// <see cref="Accepts"/> is called from inside USearch's graph walk (once per visited node, on the searching
/// thread) and, for selective filters, once per indexed key: it must be fast, thread-safe, and must not call back
/// into the index. An exception it throws fails the search that called it.
/// A filter that can list the keys it may accept should be an <see cref="ICandidateFilter"/> (a
/// <see cref="KeySet"/> when it can list exactly those): the index then scores a selective one without looking at
/// the keys it excludes.
/// </remarks>
public interface IKeyFilter
{
    bool Accepts(ulong key);
}

/// <summary>
/// A filter that names every key it can accept among a list of candidates, and still decides each one with
/// <see cref="IKeyFilter.Accepts"/>: a payload index's posting list, say, narrowed further by conditions it cannot
/// list. The index takes the candidate count as the most that can pass when planning, and scores a selective
/// filter by calling <see cref="IKeyFilter.Accepts"/> on the candidates only.
/// </summary>
/// <remarks>
/// Candidates may change between calls (writers keep adding and removing), may include keys not in the index, and
/// may repeat. <see cref="IKeyFilter.Accepts"/> must refuse every key that is not a candidate: a graph walk asks
/// it about whatever key it visits.
/// </remarks>
public interface ICandidateFilter : IKeyFilter
{
    /// <summary>How many candidates there are now, repeats included.</summary>
    int CandidateCount { get; }

    /// <summary>
    /// Writes the candidates into <paramref name="destination"/> and returns how many there are. When that is more
    /// than <paramref name="destination"/> holds, what was written is incomplete and the caller asks again with at
    /// least the returned room.
    /// </summary>
    int CopyCandidates(Span<ulong> destination);
}

/// <summary>
/// A filter given as the set of keys that may be returned. The index knows exactly how many pass and can walk
/// just those, so a selective set costs time in proportion to its size, not to the size of the index.
/// </summary>
public sealed class KeySet : ICandidateFilter
{
    private readonly HashSet<ulong> _set;
    private readonly ulong[] _keys;

    public KeySet(IEnumerable<ulong> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _set = [.. keys];
        _keys = [.. _set];
    }

    /// <summary>Distinct keys in the set (some may not be in the index).</summary>
    public int Count => _keys.Length;

    public bool Accepts(ulong key) => _set.Contains(key);

    int ICandidateFilter.CandidateCount => _keys.Length;

    int ICandidateFilter.CopyCandidates(Span<ulong> destination)
    {
        if (_keys.Length <= destination.Length) _keys.CopyTo(destination);
        return _keys.Length;
    }

    internal ReadOnlySpan<ulong> Keys => _keys;
}
