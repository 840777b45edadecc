using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MedSearch.Index;

/// <summary>
/// The index's own f32 copy of every vector, normalised to unit length, in dense slots <c>0..Count-1</c> with the
/// key of each slot. It serves exact search, re-ranking of quantised graph candidates, and the payload saved next
/// to USearch's graph (which cannot give f32 vectors back once quantised).
/// </summary>
/// <remarks>
/// Not thread-safe: <see cref="HnswIndex"/> guards it with its reader-writer lock. Slots stay dense because a
/// removal moves the last slot into the hole, so scans never skip gaps. Vectors live in pinned chunks of about
/// 1 MiB: growing never copies what is stored (a 1M x 512 copy is 2 GiB), and USearch can be handed pointers.
/// <para>
/// Beside each f32 vector it keeps an i8 code of it (one byte a component, scaled by the vector's largest
/// component, rows padded to 64 bytes) and a bound on the code's error: exact scoring reads a quarter of the bytes
/// through <see cref="Estimate"/> and turns to the f32 vector only for candidates the bound cannot rule out. At 512
/// dimensions that is 520 more bytes a vector (25 % of the f32 copy).
/// </para>
/// </remarks>
internal sealed unsafe class VectorStore
{
    private const int ChunkBytesLog2 = 20;
    private const int CodeAlignment = 64;

    // The largest magnitude of a vector code and of a query code. Queries get 16 bits because the kernel
    // widens codes to 16 bits anyway (vpmaddwd), so a finer query is free and its error all but vanishes.
    private const int CodeMax = sbyte.MaxValue;
    private const int QueryCodeMax = short.MaxValue;

    // Candidates are scattered over the codes (10 % passing leaves ~5 KiB gaps, past what the hardware prefetcher
    // follows), so each row is fetched this many candidates ahead: measured at 10 % of 100k x 512, 0.7x the time
    // of no prefetch, alike from 2 to 16 ahead.
    private const int PrefetchDistance = 8;

    private readonly int _dimensions;
    private readonly int _chunkShift;
    private readonly int _chunkMask;
    private readonly int _codeStride;
    // Float rounding in the f32 dot product and in the estimate (a few units in the last place per dimension at
    // worst), far below any code error: added to the bound, it keeps it on the side of scoring one candidate too many.
    private readonly float _roundingSlack;
    private readonly List<float[]> _chunks = [];
    // Code chunks, slot for slot like _chunks, and where each one's first row starts (64-byte aligned, so a
    // 512-byte row is eight whole cache lines).
    private readonly List<sbyte[]> _codeChunks = [];
    private readonly List<nint> _codeRows = [];
    private readonly Dictionary<ulong, int> _slots = [];
    private ulong[] _keys = [];
    // Per slot: the factor that turns a code back into the vector, then the Euclidean norm of what that misses.
    private float[] _codeScales = [];

    public VectorStore(int dimensions)
    {
        _dimensions = dimensions;
        int bytesPerVectorLog2 = BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)(dimensions * sizeof(float))));
        _chunkShift = Math.Max(0, ChunkBytesLog2 - bytesPerVectorLog2);
        _chunkMask = (1 << _chunkShift) - 1;
        _codeStride = (dimensions + CodeAlignment - 1) / CodeAlignment * CodeAlignment;
        _roundingSlack = 4 * dimensions * MathF.ScaleB(1f, -24);
    }

    public int Count { get; private set; }

    /// <summary>Length of a query code for <see cref="Estimate"/>.</summary>
    public int CodeLength => _codeStride;

    /// <summary>
    /// Vector and code chunks, the slot-to-key array, the code scales and the key-to-slot table (28 bytes an entry:
    /// a 24-byte entry and a 4-byte bucket; <c>EnsureCapacity(0)</c> only reads the table's capacity).
    /// </summary>
    public long MemoryBytes =>
        (long)_chunks.Count * (_chunkMask + 1) * _dimensions * sizeof(float)
        + (long)_codeChunks.Count * ((_chunkMask + 1) * _codeStride + CodeAlignment)
        + (long)_keys.Length * sizeof(ulong)
        + (long)_codeScales.Length * sizeof(float)
        + (long)_slots.EnsureCapacity(0) * (sizeof(int) + 24);

    public bool Contains(ulong key) => _slots.ContainsKey(key);

    public bool TryGetSlot(ulong key, out int slot) => _slots.TryGetValue(key, out slot);

    /// <summary>The slot of a key the graph returned; every key in the graph is here, so a miss is a bug.</summary>
    public int SlotOf(ulong key) => _slots[key];

    public ulong KeyAt(int slot) => _keys[slot];

    public ReadOnlySpan<float> Vector(int slot) => new(_chunks[slot >> _chunkShift], (slot & _chunkMask) * _dimensions, _dimensions);

    /// <summary>Address of a stored vector; stable for as long as the slot holds it (chunks are pinned and never move).</summary>
    public float* Pointer(int slot)
        => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_chunks[slot >> _chunkShift])) + (slot & _chunkMask) * _dimensions;

    /// <summary>Makes room for <paramref name="count"/> vectors in total, so that appends up to it allocate nothing.</summary>
    public void EnsureCapacity(int count)
    {
        while ((long)_chunks.Count << _chunkShift < count)
        {
            _chunks.Add(GC.AllocateUninitializedArray<float>((_chunkMask + 1) * _dimensions, pinned: true));
            // Zeroed: the padding after each row's last component must stay zero.
            var codes = GC.AllocateArray<sbyte>((_chunkMask + 1) * _codeStride + CodeAlignment, pinned: true);
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(codes));
            _codeChunks.Add(codes);
            _codeRows.Add((start + CodeAlignment - 1) & ~(nint)(CodeAlignment - 1));
        }
        if (_keys.Length < count)
        {
            int grown = Math.Max(count, _keys.Length * 2);
            Array.Resize(ref _keys, grown);
            Array.Resize(ref _codeScales, 2 * grown);
        }
        _slots.EnsureCapacity(count);
    }

    /// <summary>Stores <paramref name="vector"/> divided by <paramref name="norm"/> under a key that is not stored yet.</summary>
    public int Append(ulong key, ReadOnlySpan<float> vector, float norm)
    {
        int slot = Count;
        EnsureCapacity(slot + 1);
        _slots.Add(key, slot);
        _keys[slot] = key;
        TensorPrimitives.Divide(vector, norm, new Span<float>(Pointer(slot), _dimensions));
        Encode(slot);
        Count = slot + 1;
        return slot;
    }

    /// <summary>Drops <paramref name="key"/>, moving the last slot into its place.</summary>
    public bool Remove(ulong key)
    {
        if (!_slots.Remove(key, out int slot)) return false;
        int last = Count - 1;
        if (slot != last)
        {
            ulong moved = _keys[last];
            _keys[slot] = moved;
            _slots[moved] = slot;
            Vector(last).CopyTo(new Span<float>(Pointer(slot), _dimensions));
            new ReadOnlySpan<sbyte>(Code(last), _codeStride).CopyTo(new Span<sbyte>(Code(slot), _codeStride));
            _codeScales[2 * slot] = _codeScales[2 * last];
            _codeScales[2 * slot + 1] = _codeScales[2 * last + 1];
        }
        Count = last;
        return true;
    }

    /// <summary>
    /// Writes the code of <paramref name="query"/> (a unit vector) into <paramref name="code"/>
    /// (<see cref="CodeLength"/> long) for <see cref="Estimate"/>, and returns the factor back to similarities and
    /// the Euclidean norm of what the code misses.
    /// </summary>
    public (float Scale, float Error) EncodeQuery(ReadOnlySpan<float> query, Span<short> code)
    {
        // Capped so that no sum of products can overflow the kernel's 32-bit lanes, whatever the dimensions.
        int codeMax = (int)Math.Min(QueryCodeMax, int.MaxValue / ((long)CodeMax * _codeStride));
        return Quantize(query, code, codeMax);
    }

    /// <summary>
    /// Rounds <paramref name="vector"/> to integers of at most <paramref name="codeMax"/> in magnitude, scaled to its
    /// largest component, into <paramref name="code"/> (zero-padded); returns the scale and the Euclidean norm of the rounding error.
    /// </summary>
    private static (float Scale, float Error) Quantize<T>(ReadOnlySpan<float> vector, Span<T> code, int codeMax) where T : IBinaryInteger<T>
    {
        float scale = MathF.Abs(TensorPrimitives.MaxMagnitude(vector)) / codeMax;
        double error = 0;
        for (int i = 0; i < vector.Length; i++)
        {
            int c = (int)Math.Clamp(MathF.Round(vector[i] / scale), -codeMax, codeMax);
            code[i] = T.CreateTruncating(c);
            double miss = vector[i] - (double)c * scale;
            error += miss * miss;
        }
        code[vector.Length..].Clear();
        return (scale, (float)Math.Sqrt(error));
    }

    /// <summary>
    /// For each of <paramref name="slots"/>, the similarity to the query that <paramref name="code"/> encodes as its
    /// codes estimate it (<paramref name="estimates"/>) and an upper bound on the exact one (<paramref name="upper"/>).
    /// </summary>
    /// <remarks>
    /// The bound, for unit q and v and their codes' vectors q' and v': q.v - q'.v' = q.(v - v') + (q - q').v', so the
    /// error is at most |v - v'| + |q - q'| (1 + |v - v'|) by Cauchy-Schwarz. It is a worst case (the misses aligned
    /// with the other vector): on the benchmark's 512-d vectors the bounds are 0.007 to 0.011 and the largest error
    /// seen 0.002. The caller pays for that slack in candidates it must score in f32.
    /// </remarks>
    public void Estimate(ReadOnlySpan<short> code, float queryScale, float queryError, ReadOnlySpan<int> slots, Span<float> estimates, Span<float> upper)
    {
        fixed (short* q = code)
        fixed (float* scales = _codeScales)
        {
            for (int i = 0; i < slots.Length; i++)
            {
                if (Sse.IsSupported && i + PrefetchDistance < slots.Length)
                {
                    byte* ahead = (byte*)Code(slots[i + PrefetchDistance]);
                    for (int line = 0; line < _codeStride; line += CodeAlignment) Sse.Prefetch0(ahead + line);
                }
                int slot = slots[i];
                float dot = DotCodes(q, Code(slot), _codeStride) * queryScale * scales[2 * slot];
                float error = scales[2 * slot + 1];
                estimates[i] = dot;
                upper[i] = dot + error + queryError * (1 + error) + _roundingSlack;
            }
        }
    }

    private sbyte* Code(int slot) => (sbyte*)_codeRows[slot >> _chunkShift] + (long)(slot & _chunkMask) * _codeStride;

    /// <summary>Writes the code of the unit vector in <paramref name="slot"/>, its scale and its error.</summary>
    private void Encode(int slot)
    {
        var (scale, error) = Quantize(Vector(slot), new Span<sbyte>(Code(slot), _codeStride), CodeMax);
        _codeScales[2 * slot] = scale;
        _codeScales[2 * slot + 1] = error;
    }

    /// <summary>Dot product of a 16-bit query code and an 8-bit vector code, both <paramref name="length"/> long (a multiple of 64).</summary>
    private static int DotCodes(short* query, sbyte* code, int length)
    {
        if (Vector512.IsHardwareAccelerated && Avx512BW.IsSupported)
        {
            var sum = Vector512<int>.Zero;
            for (int i = 0; i < length; i += 32)
            {
                var widened = Avx512BW.ConvertToVector512Int16(Vector256.Load(code + i));
                sum += Avx512BW.MultiplyAddAdjacent(widened, Vector512.Load(query + i));
            }
            return Vector512.Sum(sum);
        }
        if (Avx2.IsSupported)
        {
            var sum = Vector256<int>.Zero;
            for (int i = 0; i < length; i += 16)
            {
                var widened = Avx2.ConvertToVector256Int16(Vector128.Load(code + i));
                sum += Avx2.MultiplyAddAdjacent(widened, Vector256.Load(query + i));
            }
            return Vector256.Sum(sum);
        }
        int total = 0;
        for (int i = 0; i < length; i++) total += query[i] * code[i];
        return total;
    }
}
