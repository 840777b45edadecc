using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using JpegLibrary;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// Collects JpegLibrary's decoded 8x8 blocks into one plane per component at the component's own (downsampled)
/// resolution, clamped to the sample range. JpegLibrary hands subsampled components over already replicated to full
/// size; keeping only every h-th/v-th sample recovers the decoded chroma exactly, so that it can be upsampled the way
/// libjpeg does it instead. For three-component frames; grey goes straight to the frame through <see cref="JpegGreyOutput"/>.
/// </summary>
internal sealed class JpegPlanes : JpegBlockOutputWriter, IDisposable
{
    private readonly Plane[] _planes;
    private readonly int _maxValue;
    private readonly int _width;
    private readonly int _height;

    private sealed class Plane(int width, int height, int hShift, int vShift)
    {
        public readonly short[] Samples = Rent(width * height);
        public readonly int Width = width;
        public readonly int Height = height;
        public readonly int HShift = hShift;
        public readonly int VShift = vShift;

        // Cleared so that blocks a damaged stream never delivers read as zero, not as another frame's pixels.
        private static short[] Rent(int length)
        {
            short[] samples = ArrayPool<short>.Shared.Rent(length);
            Array.Clear(samples, 0, length);
            return samples;
        }
    }

    /// <param name="header">A frame whose sampling ratios (max / own) are 1, 2 or 4, as JpegLibrary requires.</param>
    public JpegPlanes(JpegFrame header)
    {
        if (header.Components.Length != 3)
            throw new ArgumentException($"JpegPlanes assembles three components, not {header.Components.Length}.", nameof(header));
        _width = header.SamplesPerLine;
        _height = header.Lines;
        _maxValue = (1 << header.Precision) - 1;
        int maxH = header.MaxHorizontal, maxV = header.MaxVertical;
        _planes = new Plane[header.Components.Length];
        for (int i = 0; i < _planes.Length; i++)
        {
            JpegComponent c = header.Components[i];
            // The component's true size (A.1.1): ceil(X * H / Hmax) by ceil(Y * V / Vmax).
            _planes[i] = new Plane(
                (_width * c.Horizontal + maxH - 1) / maxH,
                (_height * c.Vertical + maxV - 1) / maxV,
                int.Log2(maxH / c.Horizontal),
                int.Log2(maxV / c.Vertical));
        }
    }

    public override void WriteBlock(ref short blockRef, int componentIndex, int x, int y)
    {
        if ((uint)componentIndex >= (uint)_planes.Length || x < 0 || y < 0)
            return;
        Plane plane = _planes[componentIndex];
        int hStep = 1 << plane.HShift;
        int vStep = 1 << plane.VShift;
        // Full-width components (luma, unsubsampled chroma) take whole block rows.
        bool wholeRows = plane.HShift == 0 && x + 8 <= plane.Width;
        Vector128<short> max = Vector128.Create((short)_maxValue);
        // Blocks start on multiples of 8, so the original samples are the rows and columns that are multiples of the step.
        for (int i = 0; i < 8; i += vStep)
        {
            int row = (y + i) >> plane.VShift;
            if (row >= plane.Height)
                break;
            Span<short> target = plane.Samples.AsSpan(row * plane.Width, plane.Width);
            ref short source = ref Unsafe.Add(ref blockRef, i * 8);
            if (wholeRows)
            {
                Vector128.Min(Vector128.Max(Vector128.LoadUnsafe(ref source), Vector128<short>.Zero), max).StoreUnsafe(ref MemoryMarshal.GetReference(target.Slice(x, 8)));
                continue;
            }
            for (int j = 0; j < 8; j += hStep)
            {
                int column = (x + j) >> plane.HShift;
                if (column >= target.Length)
                    break;
                target[column] = (short)Math.Clamp((int)Unsafe.Add(ref source, j), 0, _maxValue);
            }
        }
    }

    /// <summary>
    /// Writes the frame interleaved and little-endian. Chroma subsampled 2:1 horizontally (and optionally vertically)
    /// is upsampled with libjpeg's default "fancy" triangle filter (jdsample.c h2v1/h2v2, edges replicated); other
    /// ratios, and planes of 2 or fewer columns, are replicated, as libjpeg does.
    /// </summary>
    public void WriteTo(Span<byte> frame, bool yCbCrToRgb, int bytesPerSample)
    {
        int[] rented = ArrayPool<int>.Shared.Rent(3 * _width);
        try
        {
            Span<int> first = rented.AsSpan(0, _width), second = rented.AsSpan(_width, _width), third = rented.AsSpan(2 * _width, _width);
            for (int r = 0; r < _height; r++)
            {
                Upsample(_planes[0], r, first);
                Upsample(_planes[1], r, second);
                Upsample(_planes[2], r, third);
                if (yCbCrToRgb)
                    YCbCr.ToRgb(first, second, third, _maxValue);
                FrameOutput.Interleave(first, second, third, frame, r * _width, bytesPerSample);
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rented);
        }
    }

    private static void Upsample(Plane plane, int outputRow, Span<int> output)
    {
        ReadOnlySpan<short> samples = plane.Samples.AsSpan(0, plane.Width * plane.Height);
        int width = plane.Width;
        int row = Math.Min(outputRow >> plane.VShift, plane.Height - 1);
        ReadOnlySpan<short> input = samples.Slice(row * width, width);
        bool fancy = plane.HShift == 1 && plane.VShift <= 1 && width > 2;
        if (plane.HShift == 0)
        {
            // A full-width plane is as wide as the output row.
            Widen(input, output);
        }
        else if (!fancy)
        {
            for (int x = 0; x < output.Length; x++)
                output[x] = input[Math.Min(x >> plane.HShift, width - 1)];
        }
        else if (plane.VShift == 0)
        {
            FancyH2V1(input, output);
        }
        else
        {
            // The nearer of the two other rows: above for even output rows, below for odd; the image edge repeats its row.
            int neighbour = (outputRow & 1) == 0 ? Math.Max(row - 1, 0) : Math.Min(row + 1, plane.Height - 1);
            FancyH2V2(input, samples.Slice(neighbour * width, width), output);
        }
    }

    private static void Widen(ReadOnlySpan<short> input, Span<int> output)
    {
        int n = output.Length;
        ref short source = ref MemoryMarshal.GetReference(input[..n]);
        ref int target = ref MemoryMarshal.GetReference(output);
        int x = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; x <= n - Vector256<short>.Count; x += Vector256<short>.Count)
            {
                (Vector256<int> low, Vector256<int> high) = Vector256.Widen(Vector256.LoadUnsafe(ref source, (nuint)x));
                low.StoreUnsafe(ref target, (nuint)x);
                high.StoreUnsafe(ref target, (nuint)x + 8);
            }
        }
        for (; x < n; x++)
            Unsafe.Add(ref target, x) = Unsafe.Add(ref source, x);
    }

    /// <summary>jdsample.c h2v1_fancy_upsample: 3/4 nearer + 1/4 further sample, alternating rounding.</summary>
    private static void FancyH2V1(ReadOnlySpan<short> input, Span<int> output)
    {
        int last = input.Length - 1;
        Emit(output, 0, input[0]);
        Emit(output, 1, (input[0] * 3 + input[1] + 2) >> 2);
        for (int c = 1; c < last; c++)
        {
            int near = input[c] * 3;
            Emit(output, 2 * c, (near + input[c - 1] + 1) >> 2);
            Emit(output, 2 * c + 1, (near + input[c + 1] + 2) >> 2);
        }
        Emit(output, 2 * last, (input[last] * 3 + input[last - 1] + 1) >> 2);
        Emit(output, 2 * last + 1, input[last]);
    }

    /// <summary>jdsample.c h2v2_fancy_upsample: the same filter applied to column sums 3 * nearer row + further row.</summary>
    private static void FancyH2V2(ReadOnlySpan<short> near, ReadOnlySpan<short> far, Span<int> output)
    {
        int last = near.Length - 1;
        int previous = near[0] * 3 + far[0];
        int current = previous;
        int next = near[1] * 3 + far[1];
        Emit(output, 0, (current * 4 + 8) >> 4);
        Emit(output, 1, (current * 3 + next + 7) >> 4);
        for (int c = 1; c < last; c++)
        {
            previous = current;
            current = next;
            next = near[c + 1] * 3 + far[c + 1];
            Emit(output, 2 * c, (current * 3 + previous + 8) >> 4);
            Emit(output, 2 * c + 1, (current * 3 + next + 7) >> 4);
        }
        previous = current;
        current = next;
        Emit(output, 2 * last, (current * 3 + previous + 8) >> 4);
        Emit(output, 2 * last + 1, (current * 4 + 7) >> 4);
    }

    /// <summary>An odd image width leaves the last upsampled column outside the image.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Emit(Span<int> output, int x, int value)
    {
        if ((uint)x < (uint)output.Length)
            output[x] = value;
    }

    public void Dispose()
    {
        foreach (Plane plane in _planes)
            ArrayPool<short>.Shared.Return(plane.Samples);
    }
}
