namespace MedSearch.Index;

/// <summary>Which keys a filtered search may return.</summary>
/// <remarks>
/// <see cref="Accepts"/> is called from inside USearch's graph walk (once per visited node, on the searching
/// thread) and, for selective filters, once per indexed key: it must be fast, thread-safe, and must not call back
/// into the index. An exception it throws fails the search that called it.
/// A filter that can list its keys should be a <see cref="KeySet"/>: the index then scores a selective one
/// without looking at the keys it excludes.
/// </remarks>
public interface IKeyFilter
{
    bool Accepts(ulong key);
}

/// <summary>
/// A filter given as the set of keys that may be returned. The index knows exactly how many pass and can walk
/// just those, so a selective set costs time in proportion to its size, not to the size of the index.
/// </summary>
public sealed class KeySet : IKeyFilter
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

    internal ReadOnlySpan<ulong> Keys => _keys;
}
