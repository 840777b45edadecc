using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MedSearch.Dicom.Codecs;

/// <summary>Checks and finishing steps every decoder shares, so that they all honour the same output contract.</summary>
internal static class FrameOutput
{
    /// <summary>Rejects a format no decoder can honour and a destination that cannot hold the frame.</summary>
    public static void Validate(in FrameFormat format, int destinationLength)
    {
        if (format.Rows <= 0 || format.Columns <= 0)
            throw new CodecException($"Frame size {format.Columns}x{format.Rows} is not a valid image size.");
        if (format.SamplesPerPixel is not (1 or 3))
            throw new CodecException($"SamplesPerPixel {format.SamplesPerPixel} is not supported (only 1 or 3).");
        if (format.BitsAllocated is not (8 or 16 or 32))
            throw new CodecException($"BitsAllocated {format.BitsAllocated} is not supported for compressed frames (only 8, 16 or 32).");
        if (format.BitsStored < 1 || format.BitsStored > format.BitsAllocated)
            throw new CodecException($"BitsStored {format.BitsStored} does not fit BitsAllocated {format.BitsAllocated}.");
        if (format.FrameBytes > Array.MaxLength)
            throw new CodecException($"A {format.Columns}x{format.Rows}x{format.SamplesPerPixel} frame of {format.BitsAllocated}-bit samples is larger than one buffer can hold.");
        if (destinationLength < format.FrameBytes)
            throw new ArgumentException($"The destination holds {destinationLength} bytes but the frame needs {format.FrameBytes}.", "destination");
    }

    /// <summary>
    /// Sign-extends signed data from BitsStored to the full sample width: codecs hand back the stored bit pattern
    /// (JPEG and JPEG-LS know no sign; RLE keeps whatever the high bits held), the contract promises two's complement.
    /// </summary>
    public static void SignExtend(Span<byte> frame, in FrameFormat format)
    {
        int width = format.BytesPerSample * 8;
        if (!format.Signed || format.BitsStored >= width)
            return;
        int shift = width - format.BitsStored;
        switch (format.BytesPerSample)
        {
            case 1: SignExtend(MemoryMarshal.Cast<byte, sbyte>(frame), shift); break;
            case 2: SignExtend(MemoryMarshal.Cast<byte, short>(frame), shift); break;
            default: SignExtend(MemoryMarshal.Cast<byte, int>(frame), shift); break;
        }
    }

    // The casts above read samples in host order; the project builds for linux-x64 only, which is little-endian like the output.
    private static void SignExtend<T>(Span<T> samples, int shift) where T : unmanaged, IBinaryInteger<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            Span<Vector<T>> vectors = MemoryMarshal.Cast<T, Vector<T>>(samples);
            for (int v = 0; v < vectors.Length; v++)
                vectors[v] = (vectors[v] << shift) >> shift;
            i = vectors.Length * Vector<T>.Count;
        }
        for (; i < samples.Length; i++)
            samples[i] = (samples[i] << shift) >> shift;
    }

    /// <summary>
    /// Writes one component's samples into the interleaved frame at sample indices first, first + stride, ...:
    /// each shifted left by <paramref name="shift"/> (a lossless JPEG point transform) and cut to the sample width.
    /// </summary>
    public static void WriteStrided<T>(ReadOnlySpan<T> samples, Span<byte> frame, int first, int stride, int bytesPerSample, int shift = 0)
        where T : unmanaged, IBinaryInteger<T>
    {
        // Decoders that work in int planes (OpenJPEG, the JPEG colour path) write whole grey rows or frames this way.
        if (typeof(T) == typeof(int) && stride == 1 && shift == 0)
        {
            Narrow(MemoryMarshal.Cast<T, int>(samples), frame, first, bytesPerSample);
            return;
        }
        // Host order again, as in SignExtend: linux-x64 is little-endian like the output.
        switch (bytesPerSample)
        {
            case 1:
                for (int x = 0, at = first; x < samples.Length; x++, at += stride)
                    frame[at] = (byte)(int.CreateTruncating(samples[x]) << shift);
                break;
            case 2:
                Span<ushort> words = MemoryMarshal.Cast<byte, ushort>(frame);
                for (int x = 0, at = first; x < samples.Length; x++, at += stride)
                    words[at] = (ushort)(int.CreateTruncating(samples[x]) << shift);
                break;
            default:
                Span<int> dwords = MemoryMarshal.Cast<byte, int>(frame);
                for (int x = 0, at = first; x < samples.Length; x++, at += stride)
                    dwords[at] = int.CreateTruncating(samples[x]) << shift;
                break;
        }
    }

    /// <summary>
    /// Writes int samples to consecutive sample indices from <paramref name="first"/>, cut to the sample width: what
    /// <see cref="WriteStrided{T}"/> does for stride 1, eight to thirty-two samples at a time.
    /// </summary>
    public static void Narrow(ReadOnlySpan<int> samples, Span<byte> frame, int first, int bytesPerSample)
    {
        int n = samples.Length;
        ref int source = ref MemoryMarshal.GetReference(samples);
        switch (bytesPerSample)
        {
            case 1:
            {
                // The slice checks the whole range once, so the loops below may index it unchecked.
                ref byte target = ref MemoryMarshal.GetReference(frame.Slice(first, n));
                int x = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    for (; x <= n - 32; x += 32)
                    {
                        Vector256<short> low = Vector256.Narrow(Vector256.LoadUnsafe(ref source, (nuint)x), Vector256.LoadUnsafe(ref source, (nuint)x + 8));
                        Vector256<short> high = Vector256.Narrow(Vector256.LoadUnsafe(ref source, (nuint)x + 16), Vector256.LoadUnsafe(ref source, (nuint)x + 24));
                        Vector256.Narrow(low, high).AsByte().StoreUnsafe(ref target, (nuint)x);
                    }
                }
                for (; x < n; x++)
                    Unsafe.Add(ref target, x) = (byte)Unsafe.Add(ref source, x);
                break;
            }
            case 2:
            {
                ref ushort target = ref MemoryMarshal.GetReference(MemoryMarshal.Cast<byte, ushort>(frame.Slice(2 * first, 2 * n)));
                int x = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    for (; x <= n - 16; x += 16)
                        Vector256.Narrow(Vector256.LoadUnsafe(ref source, (nuint)x), Vector256.LoadUnsafe(ref source, (nuint)x + 8))
                            .AsUInt16().StoreUnsafe(ref target, (nuint)x);
                }
                for (; x < n; x++)
                    Unsafe.Add(ref target, x) = (ushort)Unsafe.Add(ref source, x);
                break;
            }
            default:
                MemoryMarshal.AsBytes(samples).CopyTo(frame.Slice(4 * first, 4 * n));
                break;
        }
    }

    /// <summary>Interleaves three int planes (R, G, B or Y, Cb, Cr) into the frame from pixel <paramref name="firstPixel"/>, each sample cut to the sample width.</summary>
    public static void Interleave(ReadOnlySpan<int> first, ReadOnlySpan<int> second, ReadOnlySpan<int> third, Span<byte> frame, int firstPixel, int bytesPerSample)
    {
        int n = first.Length;
        if (second.Length != n || third.Length != n)
            throw new ArgumentException("The three planes differ in length.");
        ref int a = ref MemoryMarshal.GetReference(first);
        ref int b = ref MemoryMarshal.GetReference(second);
        ref int c = ref MemoryMarshal.GetReference(third);
        switch (bytesPerSample)
        {
            case 1:
            {
                ref byte target = ref MemoryMarshal.GetReference(frame.Slice(3 * firstPixel, 3 * n));
                for (int x = 0; x < n; x++)
                {
                    ref byte pixel = ref Unsafe.Add(ref target, 3 * x);
                    pixel = (byte)Unsafe.Add(ref a, x);
                    Unsafe.Add(ref pixel, 1) = (byte)Unsafe.Add(ref b, x);
                    Unsafe.Add(ref pixel, 2) = (byte)Unsafe.Add(ref c, x);
                }
                break;
            }
            case 2:
            {
                ref ushort target = ref MemoryMarshal.GetReference(MemoryMarshal.Cast<byte, ushort>(frame.Slice(6 * firstPixel, 6 * n)));
                for (int x = 0; x < n; x++)
                {
                    ref ushort pixel = ref Unsafe.Add(ref target, 3 * x);
                    pixel = (ushort)Unsafe.Add(ref a, x);
                    Unsafe.Add(ref pixel, 1) = (ushort)Unsafe.Add(ref b, x);
                    Unsafe.Add(ref pixel, 2) = (ushort)Unsafe.Add(ref c, x);
                }
                break;
            }
            default:
            {
                ref int target = ref MemoryMarshal.GetReference(MemoryMarshal.Cast<byte, int>(frame.Slice(12 * firstPixel, 12 * n)));
                for (int x = 0; x < n; x++)
                {
                    ref int pixel = ref Unsafe.Add(ref target, 3 * x);
                    pixel = Unsafe.Add(ref a, x);
                    Unsafe.Add(ref pixel, 1) = Unsafe.Add(ref b, x);
                    Unsafe.Add(ref pixel, 2) = Unsafe.Add(ref c, x);
                }
                break;
            }
        }
    }
}
