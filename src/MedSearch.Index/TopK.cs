namespace MedSearch.Index;

/// <summary>
/// Keeps the <c>k</c> most similar of a stream of (key, similarity) pairs in the caller's output spans, as a
/// min-heap on similarity (the root is the weakest kept hit), so each offer costs O(log k) and nothing is allocated.
/// </summary>
internal ref struct TopK
{
    private readonly Span<ulong> _keys;
    private readonly Span<float> _similarities;
    private int _count;

    public TopK(Span<ulong> keys, Span<float> similarities)
    {
        _keys = keys;
        _similarities = similarities[..keys.Length];
    }

    /// <summary>The similarity an offer must beat to be kept: the weakest kept hit's once full, until then none.</summary>
    public readonly float Threshold => _count < _keys.Length ? float.NegativeInfinity : _similarities[0];

    public void Offer(ulong key, float similarity)
    {
        if (_count < _keys.Length)
        {
            int i = _count++;
            // Sift up.
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (_similarities[parent] <= similarity) break;
                _keys[i] = _keys[parent];
                _similarities[i] = _similarities[parent];
                i = parent;
            }
            _keys[i] = key;
            _similarities[i] = similarity;
        }
        else if (_count > 0 && similarity > _similarities[0])
        {
            SiftDown(key, similarity, _count);
        }
    }

    /// <summary>Sorts the kept hits most similar first (heap sort in place) and returns how many there are.</summary>
    public int Finish()
    {
        for (int end = _count - 1; end > 0; end--)
        {
            ulong key = _keys[end];
            float similarity = _similarities[end];
            _keys[end] = _keys[0];
            _similarities[end] = _similarities[0];
            SiftDown(key, similarity, end);
        }
        return _count;
    }

    /// <summary>Places (key, similarity) at the root of the heap of the first <paramref name="size"/> entries and sinks it.</summary>
    private void SiftDown(ulong key, float similarity, int size)
    {
        int i = 0;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && _similarities[child + 1] < _similarities[child]) child++;
            if (_similarities[child] >= similarity) break;
            _keys[i] = _keys[child];
            _similarities[i] = _similarities[child];
            i = child;
        }
        _keys[i] = key;
        _similarities[i] = similarity;
    }
}
