using System.Buffers;
using FASTER.core;

namespace MedSearch.Storage;

/// <summary>
/// FASTER callbacks for SpanByte keys and values. Reads copy the value into the caller's output: its inline
/// (stack) buffer when the value fits, pooled memory otherwise, which the caller returns after parsing.
/// A read into an empty output only tells whether the key is live, so the existence checks that keep
/// <see cref="CaseStore.Count"/> exact copy nothing.
/// </summary>
internal sealed class CaseFunctions() : SpanByteFunctions<Empty>(MemoryPool<byte>.Shared)
{
    public override bool SingleReader(ref SpanByte key, ref SpanByte input, ref SpanByte value, ref SpanByteAndMemory dst, ref ReadInfo readInfo)
        => IsProbe(ref dst) || base.SingleReader(ref key, ref input, ref value, ref dst, ref readInfo);

    public override bool ConcurrentReader(ref SpanByte key, ref SpanByte input, ref SpanByte value, ref SpanByteAndMemory dst, ref ReadInfo readInfo)
        => IsProbe(ref dst) || base.ConcurrentReader(ref key, ref input, ref value, ref dst, ref readInfo);

    private static bool IsProbe(ref SpanByteAndMemory dst) => dst.IsSpanByte && dst.Length == 0;
}
