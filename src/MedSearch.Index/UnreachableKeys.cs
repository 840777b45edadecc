using System.Buffers;
using System.Numerics.Tensors;

namespace MedSearch.Index;

/// <summary>
/// The keys an <see cref="HnswIndex"/> graph cannot lead to (see its "Reachability" remarks), which every graph search
/// must score too. While few, each is scored exactly; beyond <see cref="ExactLimit"/> they get a graph of their own,
/// so the cost stays logarithmic instead of growing with the index (measured on a tightly clustered 100k set: 751 such
/// keys, ~100 us of exact scoring per query). That graph is only ever built whole (<see cref="HnswIndex.AddRange"/>
/// checks a whole batch, and records what it cannot reach): one more key inserted into it could prune another's
/// last link and lose it (1 run in 25 of a 4-thread 20k build did). Keys that come after the build are scored exactly
/// until there are <see cref="ExactLimit"/> of them, then the graph is rebuilt with them. Guarded by the owning index's lock.
/// </summary>
internal sealed class UnreachableKeys(int dimensions, HnswOptions options) : IDisposable
{
    public const int ExactLimit = 256;

    private readonly HashSet<ulong> _keys = [];
    // Keys added since the graph was built, scored exactly.
    private readonly HashSet<ulong> _ungraphed = [];
    private HnswIndex? _graph;

    public int Count => _keys.Count;

    /// <summary>True once the keys are searched through their own graph rather than one by one (for tests).</summary>
    public bool HasGraph => _graph is not null;

    public IEnumerable<ulong> Keys => _keys;

    public bool Contains(ulong key) => _keys.Contains(key);

    /// <summary>Adds <paramref name="key"/>, whose unit vector <paramref name="vectors"/> holds.</summary>
    public bool Add(ulong key, VectorStore vectors)
    {
        if (!_keys.Add(key)) return false;
        if (_graph is null)
        {
            if (_keys.Count > ExactLimit) _graph = Build(vectors);
        }
        else if (_ungraphed.Add(key) && _ungraphed.Count > ExactLimit)
        {
            _graph.Dispose();
            _graph = Build(vectors);
        }
        return true;
    }

    public void Remove(ulong key)
    {
        // Removal only marks the key deleted in the graph, which keeps its links: no other key is cut off.
        if (_keys.Remove(key) && !_ungraphed.Remove(key)) _graph?.Remove(key);
    }

    /// <summary>Offers the best <c>top</c>-many of these keys that <paramref name="filter"/> accepts to <paramref name="top"/>.</summary>
    public void OfferTo(ref TopK top, int wanted, ReadOnlySpan<float> unit, IKeyFilter? filter, VectorStore vectors)
    {
        foreach (ulong key in _graph is null ? _keys : _ungraphed)
            if (filter is null || filter.Accepts(key))
                top.Offer(key, TensorPrimitives.Dot(unit, vectors.Vector(vectors.SlotOf(key))));
        if (_graph is null) return;
        var keys = ArrayPool<ulong>.Shared.Rent(wanted);
        var similarities = ArrayPool<float>.Shared.Rent(wanted);
        try
        {
            int found = _graph.Search(unit, keys.AsSpan(0, wanted), similarities.AsSpan(0, wanted), filter);
            for (int i = 0; i < found; i++) top.Offer(keys[i], similarities[i]);
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(keys);
            ArrayPool<float>.Shared.Return(similarities);
        }
    }

    /// <summary>Takes the keys a saved index listed; their vectors are in <paramref name="vectors"/> already.</summary>
    public void Load(IEnumerable<ulong> keys, VectorStore vectors)
    {
        foreach (ulong key in keys) _keys.Add(key);
        if (_keys.Count > ExactLimit) _graph = Build(vectors);
    }

    private HnswIndex Build(VectorStore vectors)
    {
        _ungraphed.Clear();
        var keys = _keys.ToArray();
        var flat = new float[keys.Length * dimensions];
        for (int i = 0; i < keys.Length; i++) vectors.Vector(vectors.SlotOf(keys[i])).CopyTo(flat.AsSpan(i * dimensions, dimensions));
        var graph = HnswIndex.Create(dimensions, options);
        graph.AddRange(keys, flat);
        return graph;
    }

    public void Dispose() => _graph?.Dispose();
}
