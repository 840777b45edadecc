using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using JpegLibrary;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// One plane per component at the component's own (downsampled) resolution, filled by our sequential decoder through
/// <see cref="Target"/> or by JpegLibrary (progressive frames) as its block writer, then upsampled and written out the way
/// libjpeg does it. JpegLibrary hands subsampled components over already replicated to full size, unclamped; keeping
/// only every h-th/v-th sample, clamped, recovers the decoded chroma exactly. For three-component frames; grey goes
/// straight to the frame.
/// </summary>
internal sealed class JpegPlanes : JpegBlockOutputWriter, IDisposable
{
    private readonly Plane[] _planes;
    private readonly int _maxValue;
    private readonly int _width;
    private readonly int _height;

    private sealed class Plane
    {
        public readonly short[] Samples;
        public readonly int Width;
        public readonly int Height;
        // Upsampling factors: the largest sampling factor over the component's own.
        public readonly int HFactor;
        public readonly int VFactor;
        // Pinned for the planes' lifetime, one frame's decode, so that blocks are written through pointers.
        public MemoryHandle Pin;

        public Plane(int width, int height, int hFactor, int vFactor)
        {
            Samples = ArrayPool<short>.Shared.Rent(width * height);
            // Cleared so that blocks a damaged stream never delivers read as zero, not as another frame's pixels.
            Array.Clear(Samples, 0, width * height);
            Pin = Samples.AsMemory().Pin();
            Width = width;
            Height = height;
            HFactor = hFactor;
            VFactor = vFactor;
        }
    }

    /// <param name="header">A frame whose sampling ratios (max / own) are whole numbers; JpegLibrary also needs them to be 1, 2 or 4.</param>
    public JpegPlanes(JpegFrame header)
    {
        if (header.Components.Length != 3)
            throw new ArgumentException($"JpegPlanes assembles three components, not {header.Components.Length}.", nameof(header));
        _width = header.SamplesPerLine;
        _height = header.Lines;
        _maxValue = (1 << header.Precision) - 1;
        int maxH = header.MaxHorizontal, maxV = header.MaxVertical;
        _planes = new Plane[header.Components.Length];
        // Checked before anything is rented and pinned: a constructor that throws is never disposed.
        foreach (JpegComponent c in header.Components)
        {
            if (maxH % c.Horizontal != 0 || maxV % c.Vertical != 0)
                throw new CodecException($"JPEG component {c.Id} is sampled {c.Horizontal}x{c.Vertical} against a maximum of {maxH}x{maxV}: fractional upsampling, which libjpeg does not implement either.");
        }
        for (int i = 0; i < _planes.Length; i++)
        {
            JpegComponent c = header.Components[i];
            // The component's true size (A.1.1): ceil(X * H / Hmax) by ceil(Y * V / Vmax).
            _planes[i] = new Plane(
                (_width * c.Horizontal + maxH - 1) / maxH,
                (_height * c.Vertical + maxV - 1) / maxV,
                maxH / c.Horizontal,
                maxV / c.Vertical);
        }
    }

    /// <summary>A component's plane, for our decoder to write its blocks into.</summary>
    public unsafe JpegSampleTarget Target(int component)
    {
        Plane plane = _planes[component];
        return new JpegSampleTarget((byte*)plane.Pin.Pointer, plane.Width, plane.Height, sizeof(short));
    }

    public override void WriteBlock(ref short blockRef, int componentIndex, int x, int y)
    {
        if ((uint)componentIndex >= (uint)_planes.Length || x < 0 || y < 0)
            return;
        Plane plane = _planes[componentIndex];
        int hStep = plane.HFactor;
        int vStep = plane.VFactor;
        // Full-width components (luma, unsubsampled chroma) take whole block rows.
        bool wholeRows = hStep == 1 && x + 8 <= plane.Width;
        Vector128<short> max = Vector128.Create((short)_maxValue);
        // Blocks start on multiples of 8, so the original samples are the rows and columns that are multiples of the step.
        for (int i = 0; i < 8; i += vStep)
        {
            int row = (y + i) / vStep;
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
                int column = (x + j) / hStep;
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
        int row = Math.Min(outputRow / plane.VFactor, plane.Height - 1);
        ReadOnlySpan<short> input = samples.Slice(row * width, width);
        bool fancy = plane.HFactor == 2 && plane.VFactor <= 2 && width > 2;
        if (plane.HFactor == 1)
        {
            // A full-width plane is as wide as the output row.
            Widen(input, output);
        }
        else if (!fancy)
        {
            for (int x = 0; x < output.Length; x++)
                output[x] = input[Math.Min(x / plane.HFactor, width - 1)];
        }
        else if (plane.VFactor == 1)
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
        {
            plane.Pin.Dispose();
            ArrayPool<short>.Shared.Return(plane.Samples);
        }
    }
}
