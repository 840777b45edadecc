using System.Numerics;
using static MedSearch.Index.UsearchNative;

namespace MedSearch.Index;

/// <summary>
/// HNSW index over cosine similarity, backed by USearch (f32 vectors, 64-bit keys, one vector per key).
/// </summary>
/// <remarks>
/// USearch itself does no locking around growth and needs one pre-reserved "thread context" per concurrent
/// call, failing the call when none is free. Here writers (add, remove, growth) are serialised behind a
/// reader-writer lock, searches share it and are capped at the number of reserved contexts. Removed keys
/// leave tombstones whose slots are reused by later adds; a graph that has seen many removals searches a
/// little worse than a fresh one, which a rebuild from the store restores.
/// </remarks>
public sealed unsafe class HnswIndex : IVectorIndex
{
    private const nuint MinimumCapacity = 1024;

    private readonly IndexHandle _handle;
    // Neither is disposed: a caller blocked in Wait/Enter while Dispose runs would otherwise throw from the
    // lock itself instead of getting ObjectDisposedException. They hold no unmanaged resources.
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly SemaphoreSlim _searchSlots;
    private bool _disposed;

    private HnswIndex(IndexHandle handle, int dimensions)
    {
        _handle = handle;
        Dimensions = dimensions;
        // USearch gives each running call one of a fixed set of thread contexts and fails a call that finds
        // none free ("Reserve capacity ahead of searches!") instead of waiting. It makes one per hardware
        // thread, which can differ from what .NET schedules on (cgroup limits, DOTNET_PROCESSOR_COUNT), so the
        // count is set here and searches queue on a semaphore of the same size. More concurrent searches than
        // cores would not finish sooner anyway.
        int contexts = Environment.ProcessorCount;
        _searchSlots = new SemaphoreSlim(contexts, contexts);
        usearch_change_threads_add(handle, (nuint)contexts, out var error);
        Check(error, "reserving add contexts");
        usearch_change_threads_search(handle, (nuint)contexts, out error);
        Check(error, "reserving search contexts");
    }

    public int Dimensions { get; }

    public long Count
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                nuint size = usearch_size(_handle, out var error);
                Check(error, "size");
                return (long)size;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>Creates an empty index for vectors of <paramref name="dimensions"/> components.</summary>
    public static HnswIndex Create(int dimensions, HnswOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimensions);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var handle = NewNative(dimensions, options);
        try
        {
            return new HnswIndex(handle, dimensions);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads an index written by <see cref="Save"/>. Connectivity comes from the file (it is built into the
    /// graph); the expansions come from <paramref name="options"/>, as USearch does not store them.
    /// </summary>
    /// <exception cref="IndexFileException">
    /// The file is missing, truncated, corrupt, or holds vectors of other dimensions or another metric.
    /// </exception>
    public static HnswIndex Load(string path, int dimensions, HnswOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimensions);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var full = Path.GetFullPath(path);
        var handle = NewNative(dimensions, options);
        try
        {
            IndexFile.Read(full, dimensions, (payload, length) => LoadPayload(handle, full, dimensions, payload, length));
            // The file does not carry the expansions. The loader happens to keep those given at creation, but
            // setting them again does not depend on that.
            usearch_change_expansion_add(handle, (nuint)options.ExpansionAdd, out var error);
            Check(error, "setting the add expansion");
            usearch_change_expansion_search(handle, (nuint)options.ExpansionSearch, out error);
            Check(error, "setting the search expansion");
            return new HnswIndex(handle, dimensions);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void Add(ulong key, ReadOnlySpan<float> vector)
    {
        RequireUsable(vector, nameof(vector));
        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // USearch refuses duplicate keys; the removed node's slot is reused by the add below.
            bool replacing = usearch_contains(_handle, key, out var error);
            Check(error, "contains");
            if (replacing)
            {
                usearch_remove(_handle, key, out error);
                Check(error, $"removing the old vector of key {key}");
            }
            EnsureCapacityForOneMore();
            fixed (float* data = vector)
                usearch_add(_handle, key, data, ScalarKind.F32, out error);
            Check(error, $"adding key {key}");
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public bool Remove(ulong key)
    {
        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            nuint removed = usearch_remove(_handle, key, out var error);
            Check(error, $"removing key {key}");
            return removed > 0;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public bool Contains(ulong key)
    {
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            bool found = usearch_contains(_handle, key, out var error);
            Check(error, "contains");
            return found;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    public int Search(ReadOnlySpan<float> query, Span<ulong> keys, Span<float> similarities)
    {
        RequireUsable(query, nameof(query));
        if (similarities.Length < keys.Length)
            throw new ArgumentException(
                $"{nameof(similarities)} has room for {similarities.Length} hits but {nameof(keys)} for {keys.Length}; it must be at least as long",
                nameof(similarities));
        if (keys.IsEmpty) return 0;

        nuint found;
        _searchSlots.Wait();
        try
        {
            _lock.EnterReadLock();
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                nint error;
                fixed (float* q = query)
                fixed (ulong* k = keys)
                fixed (float* d = similarities)
                    found = usearch_search(_handle, q, ScalarKind.F32, (nuint)keys.Length, k, d, out error);
                Check(error, "search");
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
        finally
        {
            _searchSlots.Release();
        }

        // USearch returns cosine distances, nearest first.
        var hits = similarities[..(int)found];
        for (int i = 0; i < hits.Length; i++) hits[i] = 1f - hits[i];
        return hits.Length;
    }

    /// <summary>
    /// Writes the index to a temporary file next to <paramref name="path"/>, flushes it, then renames it over
    /// <paramref name="path"/>. Searches continue meanwhile; adds and removes wait.
    /// </summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        var temp = full + ".tmp";
        // Upgradeable: shared with searches, exclusive against writers and against another Save's temp file.
        _lock.EnterUpgradeableReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            nuint length = usearch_serialized_length(_handle, out var error);
            Check(error, "measuring the serialized index");
            try
            {
                IndexFile.Write(temp, Dimensions, (long)length, (destination, bytes) =>
                {
                    usearch_save_buffer(_handle, destination, (nuint)bytes, out var saveError);
                    Check(saveError, $"saving to {full}");
                });
                File.Move(temp, full, overwrite: true);
            }
            catch
            {
                // Exists first: File.Delete throws when the directory itself is missing, hiding the real error.
                if (File.Exists(temp)) File.Delete(temp);
                throw;
            }
        }
        finally
        {
            _lock.ExitUpgradeableReadLock();
        }
    }

    public void Dispose()
    {
        _lock.EnterWriteLock();
        try
        {
            if (_disposed) return;
            _disposed = true;
            _handle.Dispose();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private static IndexHandle NewNative(int dimensions, HnswOptions options)
    {
        var init = new InitOptions
        {
            Metric = MetricKind.Cosine,
            Quantization = ScalarKind.F32,
            Dimensions = (nuint)dimensions,
            Connectivity = (nuint)options.Connectivity,
            ExpansionAdd = (nuint)options.ExpansionAdd,
            ExpansionSearch = (nuint)options.ExpansionSearch,
        };
        var handle = usearch_init(ref init, out var error);
        // usearch_init can report an error and still return an index.
        if (error != 0 || handle.IsInvalid)
        {
            handle.Dispose();
            throw new InvalidOperationException(
                $"USearch cannot create a {dimensions}-dimensional index with connectivity {options.Connectivity}: {(error != 0 ? Message(error) : "no index returned")}");
        }
        return handle;
    }

    private static void LoadPayload(IndexHandle handle, string path, int dimensions, byte* payload, long length)
    {
        var stored = default(InitOptions);
        usearch_metadata_buffer(payload, (nuint)length, ref stored, out var error);
        if (error != 0)
            throw new IndexFileException($"index file {path} has no readable USearch header: {Message(error)}");
        if (stored.Metric != MetricKind.Cosine || stored.Quantization != ScalarKind.F32 || stored.Multi != 0)
            throw new IndexFileException(
                $"index file {path} holds a USearch index with metric {(int)stored.Metric}, scalar {(int)stored.Quantization}, multi {stored.Multi}; " +
                $"expected cosine (1), f32 (1), one vector per key");
        if (stored.Dimensions != (nuint)dimensions)
            throw new IndexFileException($"index file {path} holds a {stored.Dimensions}-dimensional USearch index, expected {dimensions}");
        usearch_load_buffer(handle, payload, (nuint)length, out error);
        if (error != 0)
            throw new IndexFileException($"index file {path} cannot be loaded by USearch: {Message(error)}");
    }

    /// <summary>Grows the capacity geometrically so that one more vector fits; USearch fails adds beyond it.</summary>
    private void EnsureCapacityForOneMore()
    {
        nuint size = usearch_size(_handle, out var error);
        Check(error, "size");
        nuint capacity = usearch_capacity(_handle, out error);
        Check(error, "capacity");
        if (size < capacity) return;
        nuint grown = Math.Max(MinimumCapacity, capacity * 2);
        usearch_reserve(_handle, grown, out error);
        Check(error, $"reserving room for {grown} vectors");
    }

    /// <summary>
    /// USearch reads exactly <see cref="Dimensions"/> floats from the pointer it is given, and NaN or infinite
    /// components (or an all-zero vector, which has no direction) would poison the graph's distances.
    /// </summary>
    private void RequireUsable(ReadOnlySpan<float> vector, string name)
    {
        if (vector.Length != Dimensions)
            throw new ArgumentException($"{name} has {vector.Length} dimensions, the index expects {Dimensions}", name);

        // x - x is 0 for finite x and NaN for NaN and ±infinity, and NaN survives the sum.
        var residue = Vector<float>.Zero;
        var nonZero = Vector<float>.Zero;
        int i = 0;
        for (; i <= vector.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var block = new Vector<float>(vector[i..]);
            residue += block - block;
            nonZero |= Vector.Abs(block);
        }
        float tailResidue = 0, tailNonZero = 0;
        for (; i < vector.Length; i++)
        {
            tailResidue += vector[i] - vector[i];
            tailNonZero += Math.Abs(vector[i]);
        }
        if (float.IsNaN(Vector.Sum(residue) + tailResidue))
        {
            int bad = FirstNonFinite(vector);
            throw new ArgumentException($"{name} has a non-finite component {vector[bad]} at index {bad}", name);
        }
        if (Vector.EqualsAll(nonZero, Vector<float>.Zero) && tailNonZero == 0)
            throw new ArgumentException($"{name} is all zeros; cosine similarity needs a direction", name);
    }

    private static int FirstNonFinite(ReadOnlySpan<float> vector)
    {
        for (int i = 0; i < vector.Length; i++)
            if (!float.IsFinite(vector[i])) return i;
        return -1;
    }
}
