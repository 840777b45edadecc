using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
/// </remarks>
internal sealed unsafe class VectorStore
{
    private const int ChunkBytesLog2 = 20;

    private readonly int _dimensions;
    private readonly int _chunkShift;
    private readonly int _chunkMask;
    private readonly List<float[]> _chunks = [];
    private readonly Dictionary<ulong, int> _slots = [];
    private ulong[] _keys = [];

    public VectorStore(int dimensions)
    {
        _dimensions = dimensions;
        int bytesPerVectorLog2 = BitOperations.Log2(BitOperations.RoundUpToPowerOf2((uint)(dimensions * sizeof(float))));
        _chunkShift = Math.Max(0, ChunkBytesLog2 - bytesPerVectorLog2);
        _chunkMask = (1 << _chunkShift) - 1;
    }

    public int Count { get; private set; }

    /// <summary>
    /// Vector chunks, the slot-to-key array and the key-to-slot table (28 bytes an entry: a 24-byte entry and a
    /// 4-byte bucket; <c>EnsureCapacity(0)</c> only reads the table's capacity).
    /// </summary>
    public long MemoryBytes =>
        (long)_chunks.Count * (_chunkMask + 1) * _dimensions * sizeof(float)
        + (long)_keys.Length * sizeof(ulong)
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
            _chunks.Add(GC.AllocateUninitializedArray<float>((_chunkMask + 1) * _dimensions, pinned: true));
        if (_keys.Length < count) Array.Resize(ref _keys, Math.Max(count, _keys.Length * 2));
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
        }
        Count = last;
        return true;
    }
}
