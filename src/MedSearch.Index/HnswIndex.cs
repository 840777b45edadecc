using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using static MedSearch.Index.UsearchNative;

namespace MedSearch.Index;

/// <summary>
/// HNSW index over cosine similarity, backed by USearch (64-bit keys, one vector per key), plus the index's own
/// f32 copy of every vector (<see cref="VectorStore"/>).
/// </summary>
/// <remarks>
/// <para>
/// Vectors and queries are normalised on the way in, and USearch measures inner products: on unit vectors that
/// is the cosine, without USearch's cosine kernel recomputing both norms at every step (1.5x faster with I8).
/// </para>
/// <para>
/// Memory: the graph (about <c>2 x Connectivity x 4</c> bytes of links per vector plus USearch's copy of the vector:
/// 4, 2 or 1 bytes a component for F32, F16, I8) and the f32 copy (4 bytes a component, 28 bytes of key tables)
/// with its i8 codes (1 byte a component, rows padded to 64 bytes, 8 bytes of scale and error bound).
/// At 512 dimensions <see cref="MemoryUsage"/> measured 4.8 KiB a vector with F32, 3.5 with F16 and 2.9 with I8
/// before the codes, of which the f32 copy is 2.0; the codes add 0.5. The f32 copy is what lets I8 and F16 graphs
/// return exact similarities, answers selective filters by exact scoring (read through the codes, see
/// <see cref="ScoreExactly"/>), and survives a save even when USearch only kept quantised vectors; a
/// vector-provider callback into the store was the alternative, but the store holds protobuf records on disk, far
/// too slow to read per candidate.
/// </para>
/// <para>
/// Concurrency: USearch does no locking around growth and needs one pre-reserved "thread context" per concurrent
/// call, failing the call when none is free. Here writers (add, remove, growth) are serialised behind a
/// reader-writer lock, searches share it and are capped at <see cref="HnswOptions.ConcurrentSearches"/>. Removed keys leave
/// tombstones in the graph whose slots are reused by later adds; a graph that has seen many removals searches a
/// little worse than a fresh one, which a rebuild from the store restores.
/// </para>
/// <para>
/// Reachability: HNSW can leave a node that no search leads to, and USearch's concurrent adds leave more (1 in
/// 1,500 on 20k clustered 512-d vectors with two threads). Such a case is stored but never found by its own image,
/// so every add is checked with one search; a node that fails is re-inserted, and one that still fails is kept in
/// a set every graph search also scores (see UnreachableKeys), saved with the index. The check costs about a third more build time
/// (20k x 512-d on two threads: 1.5 s to 1.9 s). A node cut off later by other nodes' adds is caught by the next
/// rebuild, not before.
/// </para>
/// </remarks>
public sealed unsafe class HnswIndex : IVectorIndex
{
    /// <summary>
    /// A filtered search whose predicate filter (an <see cref="IKeyFilter"/> other than a <see cref="KeySet"/>)
    /// accepts at most this share of the indexed keys scores the accepted keys exactly instead of walking the graph
    /// with the filter. Exact scoring then calls the filter once per indexed key, which alone costs about as much as
    /// the walk at 10 %: measured on 100k clustered 512-d vectors at ef 64 with I8 (bench/RESULTS.md, "Index and
    /// store (issue 5)"), 690 against 770 QPS at 10 % passing, 470 against 900 at 15 %; below 10 % the walk's
    /// recall@10 falls to 0.99 and under while exact scoring is exact.
    /// An <see cref="ICandidateFilter"/> with at most this share of candidates is scored exactly without sampling,
    /// for the same recall: through Collection.Search on 100k cases (same section) that runs at 2.5x the QPS of the
    /// predicate at 10 % (1,967 against 782) and 100x and more at 1 %; with more candidates it is sampled like a
    /// predicate.
    /// </summary>
    public const double ExactSearchMaxPassingFraction = 0.10;

    /// <summary>
    /// The same threshold for a <see cref="KeySet"/>, whose keys are scored without a call per indexed key: exact
    /// scoring is as fast as the walk at about 17 % passing with I8 and 30 % with F32 (same benchmark), and above
    /// the walk's recall below that; 15 % stays under both crossovers.
    /// </summary>
    public const double KeySetExactSearchMaxPassingFraction = 0.15;

    // How many evenly spaced slots a predicate filter is tried on to estimate the share it accepts: about
    // +/- 2 points of error at the threshold, for a few microseconds of filter calls.
    private const int FilterSampleSize = 512;

    private const int MinimumCapacity = 1024;

    // Reachability check after each add: hits asked for, the similarity from which a hit counts as an exact
    // duplicate (unit vectors' dot products round a little below 1), and re-insertions tried before giving up.
    private const int ReachabilityProbe = 8;
    private const float DuplicateSimilarity = 0.99999f;
    private const int ReconnectAttempts = 3;

    // Queries and candidate lists up to these sizes live on the stack; larger ones are rented.
    private const int StackFloats = 2048;
    private const int StackCandidates = 512;

    private const int VectorSectionAlignment = 64;

    private readonly IndexHandle _handle;
    private readonly VectorStore _vectors;
    private readonly HnswOptions _options;
    private readonly ScalarKind _scalar;
    // Neither is disposed: a caller blocked in Wait/Enter while Dispose runs would otherwise throw from the
    // lock itself instead of getting ObjectDisposedException. They hold no unmanaged resources.
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly SemaphoreSlim _searchSlots;
    // Keys the graph cannot lead to even after re-insertion (see Reachable); every graph search scores them too.
    private readonly UnreachableKeys _unreachable;
    private bool _disposed;

    private HnswIndex(IndexHandle handle, int dimensions, HnswOptions options, VectorStore vectors, IEnumerable<ulong> unreachable)
    {
        _handle = handle;
        _options = options;
        _vectors = vectors;
        _unreachable = new UnreachableKeys(dimensions, options);
        _unreachable.Load(unreachable, vectors);
        _scalar = ScalarOf(options.Quantization);
        Dimensions = dimensions;
        // USearch gives each running call one of a fixed set of thread contexts and fails a call that finds
        // none free ("Reserve capacity ahead of searches!") instead of waiting. It makes one per hardware
        // thread, which can differ from what .NET schedules on (cgroup limits, DOTNET_PROCESSOR_COUNT), so the
        // count is set here and searches queue on a semaphore of ConcurrentSearches.
        _searchSlots = new SemaphoreSlim(options.ConcurrentSearches, options.ConcurrentSearches);
        usearch_change_threads_add(handle, (nuint)options.Threads, out var error);
        Check(error, "reserving add contexts");
        // Builds check reachability with searches on their own threads, under the write lock (no search is running then).
        usearch_change_threads_search(handle, (nuint)Math.Max(options.ConcurrentSearches, options.Threads), out error);
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
                return _vectors.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    public long MemoryUsage
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                nuint native = usearch_memory_usage(_handle, out var error);
                Check(error, "memory usage");
                return (long)native + _vectors.MemoryBytes;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>How many keys the graph cannot lead to and every graph search also scores (for tests and reports).</summary>
    internal int UnreachableCount
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _unreachable.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>True when the unreachable keys are searched through a graph of their own (for tests).</summary>
    internal bool UnreachableKeysHaveGraph => _unreachable.HasGraph;

    /// <summary>The SIMD kernels USearch uses on this CPU for this index's quantisation (for reports).</summary>
    internal string HardwareAcceleration => UsearchNative.HardwareAcceleration(_handle);

    /// <summary>Creates an empty index for vectors of <paramref name="dimensions"/> components.</summary>
    public static HnswIndex Create(int dimensions, HnswOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dimensions);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var handle = NewNative(dimensions, options);
        try
        {
            return new HnswIndex(handle, dimensions, options, new VectorStore(dimensions), []);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads an index written by <see cref="Save"/>. Connectivity comes from the file (it is built into the
    /// graph); the expansions and threads come from <paramref name="options"/>, as USearch does not store them.
    /// </summary>
    /// <exception cref="IndexFileException">
    /// The file is missing, truncated, corrupt, or holds vectors of other dimensions, another metric or another
    /// quantisation than <paramref name="options"/> asks for, or a graph built with a smaller ef construction.
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
            var vectors = new VectorStore(dimensions);
            var unreachable = new HashSet<ulong>();
            // A graph built with a smaller candidate list is worse linked, and the search expansion chosen with these
            // options would not reach their recall on it (ef 32: 0.990 on a graph of 128, 0.998 on 256): refused.
            IndexFile.Read(full, dimensions, options.ExpansionAdd, (payload, length, nativeLength) =>
            {
                LoadNative(handle, full, dimensions, options.Quantization, payload, nativeLength);
                LoadVectors(handle, full, dimensions, vectors, unreachable, payload, length, nativeLength);
            });
            // The file does not carry the expansions. The loader happens to keep those given at creation, but
            // setting them again does not depend on that.
            usearch_change_expansion_add(handle, (nuint)options.ExpansionAdd, out var error);
            Check(error, "setting the add expansion");
            usearch_change_expansion_search(handle, (nuint)options.ExpansionSearch, out error);
            Check(error, "setting the search expansion");
            return new HnswIndex(handle, dimensions, options, vectors, unreachable);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void Add(ulong key, ReadOnlySpan<float> vector)
    {
        RequireKey(key, nameof(key));
        float norm = RequireUsable(vector, nameof(vector));
        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            RemoveLocked(key);
            EnsureNativeCapacity(_vectors.Count + 1);
            int slot = _vectors.Append(key, vector, norm);
            usearch_add(_handle, key, _vectors.Pointer(slot), ScalarKind.F32, out var error);
            if (error != 0)
            {
                _vectors.Remove(key);
                Check(error, $"adding key {key}");
            }
            EnsureReachable(slot);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void AddRange(ReadOnlySpan<ulong> keys, ReadOnlySpan<float> vectors)
    {
        int count = keys.Length;
        if ((long)count * Dimensions != vectors.Length)
            throw new ArgumentException(
                $"{nameof(vectors)} has {vectors.Length} components; {count} keys of {Dimensions} dimensions need {(long)count * Dimensions}",
                nameof(vectors));
        if (count == 0) return;
        var norms = new float[count];
        var rows = new Dictionary<ulong, int>(count);
        for (int i = 0; i < count; i++)
        {
            RequireKey(keys[i], $"{nameof(keys)}[{i}]");
            if (!rows.TryAdd(keys[i], i))
                throw new ArgumentException($"key {keys[i]} is given twice, at rows {rows[keys[i]]} and {i}", nameof(keys));
            norms[i] = RequireUsable(vectors.Slice(i * Dimensions, Dimensions), $"{nameof(vectors)} row {i} (key {keys[i]})");
        }

        _lock.EnterWriteLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (ulong key in keys) RemoveLocked(key);
            int first = _vectors.Count;
            // Both grow before the threads start: USearch fails adds beyond its capacity, and the store must not
            // move a chunk list while the threads read vector addresses from it.
            EnsureNativeCapacity(first + count);
            _vectors.EnsureCapacity(first + count);
            for (int i = 0; i < count; i++) _vectors.Append(keys[i], vectors.Slice(i * Dimensions, Dimensions), norms[i]);

            var failures = new ConcurrentQueue<(ulong Key, string Message)>();
            fixed (ulong* keyPointer = keys)
            {
                nint keyAddress = (nint)keyPointer;
                Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _options.Threads }, i =>
                {
                    ulong key = ((ulong*)keyAddress)[i];
                    usearch_add(_handle, key, _vectors.Pointer(first + i), ScalarKind.F32, out var error);
                    if (error != 0) failures.Enqueue((key, Message(error)));
                });
            }
            if (!failures.IsEmpty)
            {
                // Keep the two halves in step: a key USearch refused must not be found by exact scoring either.
                foreach (var (key, _) in failures) _vectors.Remove(key);
                var (firstKey, message) = failures.First();
                throw new InvalidOperationException(
                    $"USearch refused {failures.Count} of {count} vectors (key {firstKey}: {message}); those keys are not in the index now");
            }

            var unreachable = Unreachable(first, count);
            foreach (int slot in unreachable) EnsureReachable(slot);
            // A re-insertion relinks its neighbours and can cut another node off: the batch is checked once more
            // and what is cut off now is recorded, not re-inserted, so the record matches the graph as it stays.
            if (unreachable.Count > 0)
                foreach (int slot in Unreachable(first, count)) _unreachable.Add(_vectors.KeyAt(slot), _vectors);
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
            return RemoveLocked(key);
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
            return _vectors.Contains(key);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    public int Search(ReadOnlySpan<float> query, Span<ulong> keys, Span<float> similarities, IKeyFilter? filter = null)
        => Run(query, keys, similarities, filter, Plan.Auto);

    public int SearchExact(ReadOnlySpan<float> query, Span<ulong> keys, Span<float> similarities, IKeyFilter? filter = null)
        => Run(query, keys, similarities, filter, Plan.Exact);

    /// <summary>How a search is answered: <see cref="Plan.Auto"/> lets the planner choose.</summary>
    internal enum Plan
    {
        Auto,
        Exact,
        Graph,
    }

    /// <summary><see cref="Search"/> with the planner's choice imposed; the benchmark measures both sides of the threshold with it.</summary>
    internal int Search(ReadOnlySpan<float> query, Span<ulong> keys, Span<float> similarities, IKeyFilter? filter, Plan plan)
        => Run(query, keys, similarities, filter, plan);

    /// <summary>
    /// Writes the index to a temporary file next to <paramref name="path"/>, flushes it, then renames it over
    /// <paramref name="path"/>. Searches continue meanwhile; adds and removes wait.
    /// </summary>
    /// <remarks>
    /// Payload: USearch's serialization, zero padding to a 64-byte boundary, then the f32 copy: count (i64), the
    /// key of each slot (u64 each), the unit vectors (f32, slot after slot), then the unreachable keys: count (i64)
    /// and the keys (u64 each), all in this machine's byte order.
    /// </remarks>
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
            long nativeLength = (long)usearch_serialized_length(_handle, out var error);
            Check(error, "measuring the serialized index");
            long vectorsAt = AlignUp(nativeLength, VectorSectionAlignment);
            long count = _vectors.Count;
            long payloadLength = vectorsAt + sizeof(long) + count * sizeof(ulong) + count * Dimensions * sizeof(float)
                + sizeof(long) + _unreachable.Count * sizeof(ulong);
            try
            {
                IndexFile.Write(temp, Dimensions, _options.ExpansionAdd, nativeLength, payloadLength, (destination, _) =>
                {
                    usearch_save_buffer(_handle, destination, (nuint)nativeLength, out var saveError);
                    Check(saveError, $"saving to {full}");
                    new Span<byte>(destination + nativeLength, (int)(vectorsAt - nativeLength)).Clear();
                    WriteVectors(destination + vectorsAt);
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
            _unreachable.Dispose();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private int Run(ReadOnlySpan<float> query, Span<ulong> keys, Span<float> similarities, IKeyFilter? filter, Plan plan)
    {
        float norm = RequireUsable(query, nameof(query));
        if (similarities.Length < keys.Length)
            throw new ArgumentException(
                $"{nameof(similarities)} has room for {similarities.Length} hits but {nameof(keys)} for {keys.Length}; it must be at least as long",
                nameof(similarities));
        if (keys.IsEmpty) return 0;

        float[]? rented = null;
        Span<float> unit = Dimensions <= StackFloats ? stackalloc float[Dimensions] : (rented = ArrayPool<float>.Shared.Rent(Dimensions)).AsSpan(0, Dimensions);
        try
        {
            TensorPrimitives.Divide(query, norm, unit);
            _searchSlots.Wait();
            try
            {
                _lock.EnterReadLock();
                try
                {
                    ObjectDisposedException.ThrowIf(_disposed, this);
                    bool exact = plan == Plan.Exact || (plan == Plan.Auto && filter is not null && IsSelective(filter));
                    return exact
                        ? ScoreExactly(unit, keys, similarities, filter)
                        : SearchGraph(unit, keys, similarities, filter);
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
        }
        finally
        {
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>The planner: true when <paramref name="filter"/> accepts few enough keys to score them exactly.</summary>
    private bool IsSelective(IKeyFilter filter)
    {
        int count = _vectors.Count;
        if (count == 0) return true;
        if (filter is KeySet set) return set.Count <= KeySetExactSearchMaxPassingFraction * count;
        // More candidates than that may still be few passing (other conditions narrow them), which sampling finds.
        if (filter is ICandidateFilter candidates && candidates.CandidateCount <= ExactSearchMaxPassingFraction * count) return true;

        int samples = Math.Min(count, FilterSampleSize);
        double step = (double)count / samples;
        int accepted = 0;
        for (int i = 0; i < samples; i++)
            if (filter.Accepts(_vectors.KeyAt((int)(i * step)))) accepted++;
        return accepted <= ExactSearchMaxPassingFraction * samples;
    }

    /// <summary>
    /// Scores the keys <paramref name="filter"/> accepts (all when null) and keeps the best: first every candidate by
    /// its i8 code (a quarter of the f32 bytes, and the scan is memory-bound), then in f32 only the candidates whose
    /// code estimate plus its error bound could still make the top (see <see cref="VectorStore.Estimate"/>): the
    /// result is the one scoring all of them in f32 would give. On 100k clustered 512-d vectors about a dozen
    /// candidates per query need the f32 pass.
    /// </summary>
    private int ScoreExactly(ReadOnlySpan<float> unit, Span<ulong> keys, Span<float> similarities, IKeyFilter? filter)
    {
        ulong[]? listed = null;
        int listedCount = 0;
        if (filter is ICandidateFilter candidateFilter and not KeySet) listedCount = CopyCandidates(candidateFilter, out listed);
        int capacity = filter switch
        {
            KeySet keySet => Math.Min(keySet.Count, _vectors.Count),
            // Not capped at the index's size: candidates may repeat until they are made distinct.
            ICandidateFilter => listedCount,
            _ => _vectors.Count,
        };
        var slots = ArrayPool<int>.Shared.Rent(capacity);
        var estimates = ArrayPool<float>.Shared.Rent(capacity);
        var upper = ArrayPool<float>.Shared.Rent(capacity);
        var queryCode = ArrayPool<short>.Shared.Rent(_vectors.CodeLength);
        // Twice k: the lazy rounds of BestAccepted write a round of k after the accepted ones kept so far.
        var best = ArrayPool<int>.Shared.Rent(2 * keys.Length);
        try
        {
            int count = 0;
            if (filter is KeySet set)
            {
                foreach (ulong key in set.Keys)
                    if (_vectors.TryGetSlot(key, out int slot))
                        slots[count++] = slot;
                // A set in no particular order would read the codes back and forth; in address order the reads
                // are cheaper (measured at 20 % passing, keys shuffled: 1.09x the QPS; already in order: 0.97x).
                // Only for sets dense enough that the bitmap's words are no more than its keys.
                if (count >= (_vectors.Count + 63) / 64) count = SortByBitmap(slots, count);
            }
            else if (listed is not null)
            {
                foreach (ulong key in listed.AsSpan(0, listedCount))
                    if (_vectors.TryGetSlot(key, out int slot))
                        slots[count++] = slot;
                // A repeated candidate would be returned twice. Slot order is the order keys were added, which is
                // where a filter filled alongside the index keeps its own entries, so it reads them in address order;
                // it is also the order a predicate's keys are offered in, so the same one of two tied keys wins
                // either way. The filter itself is asked below, only about candidates that could make the top.
                count = count >= (_vectors.Count + 63) / 64 ? SortByBitmap(slots, count) : SortDistinct(slots, count);
            }
            else
            {
                for (int slot = 0; slot < _vectors.Count; slot++)
                    if (filter is null || filter.Accepts(_vectors.KeyAt(slot)))
                        slots[count++] = slot;
            }

            var (queryScale, queryError) = _vectors.EncodeQuery(unit, queryCode.AsSpan(0, _vectors.CodeLength));
            _vectors.Estimate(queryCode.AsSpan(0, _vectors.CodeLength), queryScale, queryError, slots.AsSpan(0, count),
                estimates.AsSpan(0, count), upper.AsSpan(0, count));

            bool unasked = listed is not null;
            int first = unasked
                ? BestAccepted(filter!, slots, count, estimates, upper, keys, similarities, best)
                : Best(estimates.AsSpan(0, count), keys, similarities, best);

            // The best estimates, scored in f32, set the bar the others' bounds must reach.
            var top = new TopK(keys, similarities);
            for (int i = 0; i < first; i++)
            {
                int at = best[i];
                top.Offer(_vectors.KeyAt(slots[at]), TensorPrimitives.Dot(unit, _vectors.Vector(slots[at])));
                upper[at] = float.NegativeInfinity;
            }
            for (int i = 0; i < count; i++)
                if (upper[i] > top.Threshold && (!unasked || filter!.Accepts(_vectors.KeyAt(slots[i]))))
                    top.Offer(_vectors.KeyAt(slots[i]), TensorPrimitives.Dot(unit, _vectors.Vector(slots[i])));
            return top.Finish();
        }
        finally
        {
            ArrayPool<int>.Shared.Return(slots);
            ArrayPool<float>.Shared.Return(estimates);
            ArrayPool<float>.Shared.Return(upper);
            ArrayPool<short>.Shared.Return(queryCode);
            ArrayPool<int>.Shared.Return(best);
            if (listed is not null) ArrayPool<ulong>.Shared.Return(listed);
        }
    }

    /// <summary>
    /// Writes into <paramref name="best"/> the positions of the <c>keys.Length</c> highest <paramref name="estimates"/>,
    /// highest first, and returns how many; <paramref name="keys"/> and <paramref name="similarities"/> serve as the heap.
    /// </summary>
    private static int Best(ReadOnlySpan<float> estimates, Span<ulong> keys, Span<float> similarities, Span<int> best)
    {
        var byEstimate = new TopK(keys, similarities);
        for (int i = 0; i < estimates.Length; i++)
            if (estimates[i] != float.NegativeInfinity) byEstimate.Offer((ulong)i, estimates[i]);
        int found = byEstimate.Finish();
        for (int i = 0; i < found; i++) best[i] = (int)keys[i];
        return found;
    }

    /// <summary>
    /// <see cref="Best"/> among the candidates <paramref name="filter"/> accepts, asking it about the best estimates
    /// first: a candidate list that the filter mostly accepts (a posting list, with nothing else to check) then costs
    /// about <c>k</c> calls instead of one per candidate (at 10 % of 100k, the calls were 60 % of the query).
    /// Candidates found refused get a bound of minus infinity, so the bound pass skips them; those asked and
    /// accepted are in <paramref name="best"/>; the rest the bound pass asks about when their bound calls for it.
    /// </summary>
    private int BestAccepted(IKeyFilter filter, int[] slots, int count, float[] estimates, float[] upper, Span<ulong> keys,
        Span<float> similarities, int[] best)
    {
        // A filter that refuses most of its candidates would need round after round; after a few, it is asked about all.
        const int LazyRounds = 4;
        int wanted = keys.Length, first = 0;
        for (int round = 0; first < wanted; round++)
        {
            if (round == LazyRounds)
            {
                for (int i = 0; i < count; i++)
                    if (estimates[i] != float.NegativeInfinity && !filter.Accepts(_vectors.KeyAt(slots[i])))
                        estimates[i] = upper[i] = float.NegativeInfinity;
                // Accepted, all of them: the best left fill what the rounds did not.
                int more = Best(estimates.AsSpan(0, count), keys, similarities, best.AsSpan(first));
                return first + Math.Min(more, wanted - first);
            }
            int picked = Best(estimates.AsSpan(0, count), keys, similarities, best.AsSpan(first));
            if (picked == 0) break;
            // Compacted in place: accepted positions stay in best (in estimate order), refused ones drop out.
            int end = first + picked;
            for (int j = first; j < end && first < wanted; j++)
            {
                int at = best[j];
                estimates[at] = float.NegativeInfinity;
                if (filter.Accepts(_vectors.KeyAt(slots[at]))) best[first++] = at;
                else upper[at] = float.NegativeInfinity;
            }
        }
        return first;
    }

    /// <summary>Copies the filter's candidates into a rented buffer, which the caller returns; asks again while writers outgrow it.</summary>
    private static int CopyCandidates(ICandidateFilter filter, out ulong[] listed)
    {
        int room = filter.CandidateCount;
        while (true)
        {
            listed = ArrayPool<ulong>.Shared.Rent(Math.Max(room, 1));
            int count = filter.CopyCandidates(listed);
            if (count <= listed.Length) return count;
            ArrayPool<ulong>.Shared.Return(listed);
            room = count;
        }
    }

    /// <summary>Sorts the first <paramref name="count"/> of <paramref name="slots"/> and drops repeats; for lists too sparse for <see cref="SortByBitmap"/>.</summary>
    private static int SortDistinct(int[] slots, int count)
    {
        Array.Sort(slots, 0, count);
        int distinct = 0;
        for (int i = 0; i < count; i++)
            if (distinct == 0 || slots[i] != slots[distinct - 1])
                slots[distinct++] = slots[i];
        return distinct;
    }

    /// <summary>Sorts the first <paramref name="count"/> of <paramref name="slots"/> through a bitmap over all slots, dropping repeats.</summary>
    private int SortByBitmap(int[] slots, int count)
    {
        int words = (_vectors.Count + 63) / 64;
        var bitmap = ArrayPool<ulong>.Shared.Rent(words);
        try
        {
            Array.Clear(bitmap, 0, words);
            for (int i = 0; i < count; i++) bitmap[slots[i] >> 6] |= 1UL << slots[i];
            int sorted = 0;
            for (int word = 0; word < words; word++)
                for (ulong bits = bitmap[word]; bits != 0; bits &= bits - 1)
                    slots[sorted++] = (word << 6) + BitOperations.TrailingZeroCount(bits);
            return sorted;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(bitmap);
        }
    }

    private int SearchGraph(ReadOnlySpan<float> unit, Span<ulong> keys, Span<float> similarities, IKeyFilter? filter)
    {
        if (_scalar == ScalarKind.F32 && _unreachable.Count == 0)
        {
            // f32 graph distances are exact: no re-ranking.
            int found = NativeSearch(unit, keys, similarities, filter);
            for (int i = 0; i < found; i++) similarities[i] = 1f - similarities[i];
            return found;
        }

        // Quantised distances misorder near ties, so a wider list is re-ranked with the f32 vectors: the whole beam
        // (ExpansionSearch candidates, which USearch keeps anyway), and never less than twice k — with k at or above
        // the beam, re-ranking only k candidates would leave every quantisation error at the cut in place (recall@100
        // was 0.93 on BreastMNIST with I8).
        int wanted = _scalar == ScalarKind.F32 ? keys.Length : Math.Max(2 * keys.Length, _options.ExpansionSearch);
        ulong[]? rentedKeys = null;
        float[]? rentedDistances = null;
        Span<ulong> candidates = wanted <= StackCandidates ? stackalloc ulong[wanted] : (rentedKeys = ArrayPool<ulong>.Shared.Rent(wanted)).AsSpan(0, wanted);
        Span<float> distances = wanted <= StackCandidates ? stackalloc float[wanted] : (rentedDistances = ArrayPool<float>.Shared.Rent(wanted)).AsSpan(0, wanted);
        try
        {
            int found = NativeSearch(unit, candidates, distances, filter);
            var top = new TopK(keys, similarities);
            bool anyUnreachable = _unreachable.Count > 0;
            for (int i = 0; i < found; i++)
            {
                ulong key = candidates[i];
                // Offered below, once.
                if (anyUnreachable && _unreachable.Contains(key)) continue;
                top.Offer(key, TensorPrimitives.Dot(unit, _vectors.Vector(_vectors.SlotOf(key))));
            }
            if (anyUnreachable) _unreachable.OfferTo(ref top, keys.Length, unit, filter, _vectors);
            return top.Finish();
        }
        finally
        {
            if (rentedKeys is not null) ArrayPool<ulong>.Shared.Return(rentedKeys);
            if (rentedDistances is not null) ArrayPool<float>.Shared.Return(rentedDistances);
        }
    }

    /// <summary>USearch's graph search for <c>keys.Length</c> hits; writes inner-product distances (1 - similarity).</summary>
    private int NativeSearch(ReadOnlySpan<float> unit, Span<ulong> keys, Span<float> distances, IKeyFilter? filter)
    {
        nuint found;
        nint error;
        fixed (float* q = unit)
        fixed (ulong* k = keys)
        fixed (float* d = distances)
        {
            if (filter is null)
            {
                found = usearch_search(_handle, q, ScalarKind.F32, (nuint)keys.Length, k, d, out error);
            }
            else
            {
                var call = FilterCall.Begin(filter);
                var state = GCHandle.Alloc(call);
                try
                {
                    found = usearch_filtered_search(_handle, q, ScalarKind.F32, (nuint)keys.Length, &AcceptsFromNative,
                        (void*)GCHandle.ToIntPtr(state), k, d, out error);
                }
                finally
                {
                    state.Free();
                }
                call.End();
            }
        }
        Check(error, filter is null ? "search" : "filtered search");
        return (int)found;
    }

    /// <summary>
    /// The filter as USearch calls it. An exception must not unwind through native frames (the process would
    /// die), so it is kept, every later key is refused, and <see cref="FilterCall.End"/> rethrows it.
    /// </summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int AcceptsFromNative(ulong key, void* state)
    {
        var call = (FilterCall)GCHandle.FromIntPtr((nint)state).Target!;
        if (call.Failure is not null) return 0;
        try
        {
            return call.Filter!.Accepts(key) ? 1 : 0;
        }
        catch (Exception e)
        {
            call.Failure = ExceptionDispatchInfo.Capture(e);
            return 0;
        }
    }

    /// <summary>One filtered graph search's filter and its failure; one instance per thread, reused.</summary>
    private sealed class FilterCall
    {
        [ThreadStatic] private static FilterCall? t_current;

        public IKeyFilter? Filter;
        public ExceptionDispatchInfo? Failure;

        public static FilterCall Begin(IKeyFilter filter)
        {
            var call = t_current;
            // Busy when a filter itself runs a filtered search of another index: that one gets its own instance.
            if (call is null || call.Filter is not null) t_current = call = new FilterCall();
            call.Filter = filter;
            call.Failure = null;
            return call;
        }

        public void End()
        {
            var failure = Failure;
            Filter = null;
            Failure = null;
            failure?.Throw();
        }
    }

    /// <summary>Removes <paramref name="key"/> from the graph and the f32 copy; the caller holds the write lock.</summary>
    private bool RemoveLocked(ulong key)
    {
        if (!_vectors.Contains(key)) return false;
        usearch_remove(_handle, key, out var error);
        Check(error, $"removing key {key}");
        _vectors.Remove(key);
        _unreachable.Remove(key);
        return true;
    }

    /// <summary>
    /// True when a graph search for the vector in <paramref name="slot"/> finds its key, or is filled with exact
    /// duplicates of it. Concurrent adds make USearch skip links to nodes that are busy at that moment, and now and
    /// then a node ends up with no way in: measured on 20k clustered 512-d vectors, about 1 in 1,500 after a
    /// two-thread build against 1 in 20,000 one at a time. Such a case would be stored but never found by its
    /// own image, so every add is checked with one search, a fraction of what the add itself cost.
    /// </summary>
    private bool Reachable(int slot)
    {
        Span<ulong> keys = stackalloc ulong[ReachabilityProbe];
        Span<float> distances = stackalloc float[ReachabilityProbe];
        ulong key = _vectors.KeyAt(slot);
        var vector = _vectors.Vector(slot);
        int found = NativeSearch(vector, keys, distances, filter: null);
        bool allDuplicates = found == ReachabilityProbe;
        for (int i = 0; i < found; i++)
        {
            if (keys[i] == key) return true;
            // Compared in f32: quantised graphs report distances on their own integer scale.
            allDuplicates &= TensorPrimitives.Dot(vector, _vectors.Vector(_vectors.SlotOf(keys[i]))) >= DuplicateSimilarity;
        }
        return allDuplicates;
    }

    /// <summary>Slots from <paramref name="first"/> on that <see cref="Reachable"/> fails for, found in parallel.</summary>
    private List<int> Unreachable(int first, int count)
    {
        var found = new ConcurrentBag<int>();
        Parallel.For(first, first + count, new ParallelOptions { MaxDegreeOfParallelism = _options.Threads }, slot =>
        {
            if (!Reachable(slot)) found.Add(slot);
        });
        var slots = found.ToList();
        // In slot order, so re-insertions happen in the same order on every run.
        slots.Sort();
        return slots;
    }

    /// <summary>
    /// Inserts the node in <paramref name="slot"/> again, alone, until it is reachable, so it links into the graph as
    /// it is now; the caller holds the write lock. One still unreachable after a few tries is kept in a set that
    /// every graph search also scores (measured: none of 20k after a one-thread build, 21 of 50k).
    /// </summary>
    private void EnsureReachable(int slot)
    {
        ulong key = _vectors.KeyAt(slot);
        if (Reachable(slot))
        {
            _unreachable.Remove(key);
            return;
        }
        try
        {
            // Each try looks at twice as many candidates for links as the one before: the same search again
            // would mostly pick the same neighbours, which had pruned the node out.
            for (int attempt = 1; attempt <= ReconnectAttempts; attempt++)
            {
                usearch_change_expansion_add(_handle, (nuint)(_options.ExpansionAdd << attempt), out var error);
                Check(error, "widening the add expansion");
                usearch_remove(_handle, key, out error);
                Check(error, $"removing key {key} to reconnect it");
                usearch_add(_handle, key, _vectors.Pointer(slot), ScalarKind.F32, out error);
                Check(error, $"reconnecting key {key}");
                if (Reachable(slot))
                {
                    _unreachable.Remove(key);
                    return;
                }
            }
            _unreachable.Add(key, _vectors);
        }
        finally
        {
            usearch_change_expansion_add(_handle, (nuint)_options.ExpansionAdd, out var error);
            Check(error, "restoring the add expansion");
        }
    }

    /// <summary>Grows the graph's capacity geometrically to at least <paramref name="needed"/>; USearch fails adds beyond it.</summary>
    private void EnsureNativeCapacity(int needed)
    {
        nuint capacity = usearch_capacity(_handle, out var error);
        Check(error, "capacity");
        if ((nuint)needed <= capacity) return;
        nuint grown = Math.Max(Math.Max(MinimumCapacity, capacity * 2), (nuint)needed);
        usearch_reserve(_handle, grown, out error);
        Check(error, $"reserving room for {grown} vectors");
    }

    private void WriteVectors(byte* destination)
    {
        int count = _vectors.Count;
        BinaryPrimitives.WriteInt64LittleEndian(new Span<byte>(destination, sizeof(long)), count);
        var keys = new Span<ulong>(destination + sizeof(long), count);
        var vectors = destination + sizeof(long) + (long)count * sizeof(ulong);
        long vectorBytes = Dimensions * sizeof(float);
        for (int slot = 0; slot < count; slot++)
        {
            keys[slot] = _vectors.KeyAt(slot);
            _vectors.Vector(slot).CopyTo(new Span<float>(vectors + slot * vectorBytes, Dimensions));
        }
        var unreachable = vectors + count * vectorBytes;
        BinaryPrimitives.WriteInt64LittleEndian(new Span<byte>(unreachable, sizeof(long)), _unreachable.Count);
        var unreachableKeys = new Span<ulong>(unreachable + sizeof(long), _unreachable.Count);
        int next = 0;
        foreach (ulong key in _unreachable.Keys) unreachableKeys[next++] = key;
    }

    private static void LoadVectors(IndexHandle handle, string path, int dimensions, VectorStore store, HashSet<ulong> unreachable,
        byte* payload, long length, long nativeLength)
    {
        long at = AlignUp(nativeLength, VectorSectionAlignment);
        long count = at + sizeof(long) <= length ? BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(payload + at, sizeof(long))) : -1;
        long vectorBytes = dimensions * sizeof(float);
        long unreachableAt = at + sizeof(long) + count * (sizeof(ulong) + vectorBytes);
        long unreachableCount = count >= 0 && count <= int.MaxValue && unreachableAt + sizeof(long) <= length
            ? BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(payload + unreachableAt, sizeof(long)))
            : -1;
        if (unreachableCount < 0 || unreachableCount > count || unreachableAt + sizeof(long) + unreachableCount * sizeof(ulong) != length)
            throw new IndexFileException($"index file {path} is corrupt: its f32 vector and unreachable-key sections do not fill the rest of the file");
        nuint graphSize = usearch_size(handle, out var error);
        Check(error, "size");
        if ((long)graphSize != count)
            throw new IndexFileException($"index file {path} is corrupt: its graph holds {graphSize} vectors, its f32 section {count}");

        var keys = new ReadOnlySpan<ulong>(payload + at + sizeof(long), (int)count);
        var vectors = payload + at + sizeof(long) + count * sizeof(ulong);
        store.EnsureCapacity((int)count);
        for (int slot = 0; slot < count; slot++)
        {
            ulong key = keys[slot];
            if (store.Contains(key) || !usearch_contains(handle, key, out error))
                throw new IndexFileException($"index file {path} is corrupt: key {key} of its f32 section is repeated or missing from its graph");
            // Stored vectors are unit length already.
            store.Append(key, new ReadOnlySpan<float>(vectors + slot * vectorBytes, dimensions), 1f);
        }
        foreach (ulong key in new ReadOnlySpan<ulong>(payload + unreachableAt + sizeof(long), (int)unreachableCount))
        {
            if (!store.Contains(key) || !unreachable.Add(key))
                throw new IndexFileException($"index file {path} is corrupt: unreachable key {key} is repeated or not in the index");
        }
    }

    private static IndexHandle NewNative(int dimensions, HnswOptions options)
    {
        var init = new InitOptions
        {
            Metric = MetricKind.InnerProduct,
            Quantization = ScalarOf(options.Quantization),
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

    private static void LoadNative(IndexHandle handle, string path, int dimensions, Quantization quantization, byte* payload, long length)
    {
        var stored = default(InitOptions);
        usearch_metadata_buffer(payload, (nuint)length, ref stored, out var error);
        if (error != 0)
            throw new IndexFileException($"index file {path} has no readable USearch header: {Message(error)}");
        if (stored.Metric != MetricKind.InnerProduct || stored.Multi != 0)
            throw new IndexFileException(
                $"index file {path} holds a USearch index with metric {(int)stored.Metric}, multi {stored.Multi}; expected inner product (2), one vector per key");
        if (stored.Quantization != ScalarOf(quantization))
            throw new IndexFileException(
                $"index file {path} stores its graph's vectors as {NameOf(stored.Quantization)}, the options ask for {quantization}");
        if (stored.Dimensions != (nuint)dimensions)
            throw new IndexFileException($"index file {path} holds a {stored.Dimensions}-dimensional USearch index, expected {dimensions}");
        usearch_load_buffer(handle, payload, (nuint)length, out error);
        if (error != 0)
            throw new IndexFileException($"index file {path} cannot be loaded by USearch: {Message(error)}");
    }

    private static ScalarKind ScalarOf(Quantization quantization) => quantization switch
    {
        Quantization.F32 => ScalarKind.F32,
        Quantization.F16 => ScalarKind.F16,
        Quantization.I8 => ScalarKind.I8,
        _ => throw new ArgumentOutOfRangeException(nameof(quantization), quantization, "unknown quantization"),
    };

    private static string NameOf(ScalarKind kind) => kind switch
    {
        ScalarKind.F32 => "F32",
        ScalarKind.F16 => "F16",
        ScalarKind.I8 => "I8",
        _ => $"USearch scalar kind {(int)kind}",
    };

    private static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    /// <summary>USearch marks empty slots with the largest key, so that key cannot be stored.</summary>
    private static void RequireKey(ulong key, string name)
    {
        if (key == ulong.MaxValue)
            throw new ArgumentOutOfRangeException(name, key, $"key {key} (ulong.MaxValue) is reserved by USearch for empty slots");
    }

    /// <summary>
    /// Returns the Euclidean norm of <paramref name="vector"/>, refusing what cannot be stored: USearch reads
    /// exactly <see cref="Dimensions"/> floats from the pointer it is given, and NaN or infinite components (or a
    /// vector with no direction) would poison the graph's distances.
    /// </summary>
    private float RequireUsable(ReadOnlySpan<float> vector, string name)
    {
        if (vector.Length != Dimensions)
            throw new ArgumentException($"{name} has {vector.Length} dimensions, the index expects {Dimensions}", name);
        // NaN and infinity survive the sum of squares, so one pass tells whether any component is unusable.
        float norm = TensorPrimitives.Norm(vector);
        if (!float.IsFinite(norm))
        {
            int bad = FirstNonFinite(vector);
            throw new ArgumentException(
                bad >= 0
                    ? $"{name} has a non-finite component {vector[bad]} at index {bad}"
                    : $"{name} is too long to normalise (its norm overflows a float)",
                name);
        }
        if (norm == 0)
            throw new ArgumentException($"{name} has no direction (all zeros, or too small to normalise); cosine similarity needs one", name);
        return norm;
    }

    private static int FirstNonFinite(ReadOnlySpan<float> vector)
    {
        for (int i = 0; i < vector.Length; i++)
            if (!float.IsFinite(vector[i])) return i;
        return -1;
    }
}
