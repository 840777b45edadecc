using System.Buffers;
using System.Numerics;
using MedSearch.Imaging;

namespace MedSearch.Embedding;

/// <summary>
/// Turns a <see cref="PixelImage"/> into the model's input: planar RGB (CHW) at the model's size, scaled and
/// normalised per the manifest. The whole image is resized to the input size (aspect ratio not kept): cropping
/// could cut away the finding a query is about, and padding would add borders the model never saw in training.
/// </summary>
/// <remarks>
/// Resampling is separable with pixel-centre alignment (align_corners=false) and one of two kernels, as PIL
/// resizes: <see cref="ResizeMethod.Bilinear"/> is a triangle (tent) kernel, which when enlarging is exactly
/// bilinear interpolation with edge clamping (PIL, torchvision, PyTorch's interpolate);
/// <see cref="ResizeMethod.Bicubic"/> is the Keys cubic with a = -0.5 (PIL's BICUBIC, what torchvision's Resize
/// does to a PIL image). When shrinking, either kernel widens with the scale factor (PIL, torchvision's
/// antialias=True), so every source pixel contributes and a 2000-pixel radiograph does not alias into noise.
/// Tent weights are non-negative, so output stays within the input's range; the cubic's negative lobes can
/// overshoot, so its result is clamped to 0..255 as PIL's 8-bit result is. Arithmetic is plain float in a fixed
/// order (no FMA contraction, vector ops only element-wise), so the result is identical for every call and
/// instance. Instances are immutable and thread-safe; scratch memory comes from <see cref="ArrayPool{T}"/>.
/// </remarks>
public sealed class ImagePreprocessor
{
    private const int ModelChannels = 3;

    // Per channel: out = resampled * gain + offset, i.e. (pixel * scale - mean) / std folded into one multiply-add.
    private readonly float[] _gain = new float[ModelChannels];
    private readonly float[] _offset = new float[ModelChannels];
    private readonly ResizeMethod _method;

    public ImagePreprocessor(ModelManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (manifest.Channels != ModelChannels)
            throw new ArgumentException($"the preprocessor writes 3-channel input, the manifest declares {manifest.Channels}", nameof(manifest));
        Width = manifest.InputWidth;
        Height = manifest.InputHeight;
        _method = manifest.ResizeMethod;
        float scale = manifest.Scale == PixelScale.Unit ? 1f / 255f : 1f;
        for (int c = 0; c < ModelChannels; c++)
        {
            _gain[c] = scale / manifest.Std[c];
            _offset[c] = -manifest.Mean[c] / manifest.Std[c];
        }
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Floats one image occupies in the model input: 3 × Height × Width.</summary>
    public int TensorLength => ModelChannels * Width * Height;

    /// <summary>Writes the image's CHW planes (R, G, B) into <paramref name="destination"/>, which must hold exactly <see cref="TensorLength"/> floats.</summary>
    public void Write(PixelImage image, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (destination.Length != TensorLength)
            throw new ArgumentException($"destination holds {destination.Length} floats, one {Width}x{Height}x3 image needs {TensorLength}", nameof(destination));

        int channels = image.Channels;
        int rowLength = image.Width * channels;
        // Rows first: the vertical pass is over whole contiguous rows (vectorised), which makes the costlier
        // pass cheap when shrinking a large image, and leaves a small Height x sourceWidth image for the second.
        long scratch = (long)Height * rowLength;
        if (scratch > Array.MaxLength)
            throw new ArgumentException($"a {image.Width}-pixel-wide image is too wide to resample to height {Height}", nameof(image));
        using var vertical = Taps.Create(image.Height, Height, _method);
        using var horizontal = Taps.Create(image.Width, Width, _method);
        float[] rows = ArrayPool<float>.Shared.Rent((int)scratch);
        try
        {
            ResampleRows(image.Pixels, rowLength, vertical, rows);
            // Every source row reaches the intermediate rows (the kernel covers the image), so checking them
            // catches NaN or infinity anywhere in the image, before the cubic's clamp could turn an infinity
            // into 255; downstream they would give NaN or silently zero vectors.
            if (!AllFinite(rows.AsSpan(0, (int)scratch)))
                throw new ArgumentException($"the {image.Width}x{image.Height} image holds NaN or infinite pixel values", nameof(image));
            bool clamp = _method == ResizeMethod.Bicubic;
            if (channels == 1) ResampleColumnsGrey(rows, rowLength, horizontal, clamp, destination);
            else ResampleColumnsRgb(rows, rowLength, horizontal, clamp, destination);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rows);
        }
    }

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        // x - x is 0 for finite x and NaN for NaN or infinity; summing the differences keeps any NaN.
        var acc = Vector<float>.Zero;
        int i = 0;
        for (; i <= values.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var v = new Vector<float>(values[i..]);
            acc += v - v;
        }
        float tail = 0;
        for (; i < values.Length; i++) tail += values[i] - values[i];
        return Vector.Sum(acc) + tail == 0;
    }

    private void ResampleRows(float[] source, int rowLength, in Taps taps, float[] rows)
    {
        for (int y = 0; y < Height; y++)
        {
            var target = rows.AsSpan(y * rowLength, rowLength);
            var weights = taps.WeightsOf(y);
            int first = taps.Start[y];
            Scale(source.AsSpan(first * rowLength, rowLength), weights[0], target);
            for (int k = 1; k < weights.Length; k++)
                AddScaled(source.AsSpan((first + k) * rowLength, rowLength), weights[k], target);
        }
    }

    private void ResampleColumnsGrey(float[] rows, int rowLength, in Taps taps, bool clamp, Span<float> destination)
    {
        int plane = Width * Height;
        var r = destination[..plane];
        var g = destination.Slice(plane, plane);
        var b = destination.Slice(2 * plane, plane);
        for (int y = 0; y < Height; y++)
        {
            var row = rows.AsSpan(y * rowLength, rowLength);
            for (int x = 0; x < Width; x++)
            {
                var weights = taps.WeightsOf(x);
                var pixels = row.Slice(taps.Start[x], weights.Length);
                float sum = 0;
                for (int k = 0; k < weights.Length; k++) sum += weights[k] * pixels[k];
                if (clamp) sum = Math.Clamp(sum, 0f, 255f);
                int o = y * Width + x;
                // Replicate: the grey value goes to every channel, each with its own normalisation.
                r[o] = sum * _gain[0] + _offset[0];
                g[o] = sum * _gain[1] + _offset[1];
                b[o] = sum * _gain[2] + _offset[2];
            }
        }
    }

    private void ResampleColumnsRgb(float[] rows, int rowLength, in Taps taps, bool clamp, Span<float> destination)
    {
        int plane = Width * Height;
        var r = destination[..plane];
        var g = destination.Slice(plane, plane);
        var b = destination.Slice(2 * plane, plane);
        for (int y = 0; y < Height; y++)
        {
            var row = rows.AsSpan(y * rowLength, rowLength);
            for (int x = 0; x < Width; x++)
            {
                var weights = taps.WeightsOf(x);
                var pixels = row.Slice(taps.Start[x] * 3, weights.Length * 3);
                float sr = 0, sg = 0, sb = 0;
                for (int k = 0, p = 0; k < weights.Length; k++, p += 3)
                {
                    float w = weights[k];
                    sr += w * pixels[p];
                    sg += w * pixels[p + 1];
                    sb += w * pixels[p + 2];
                }
                if (clamp)
                {
                    sr = Math.Clamp(sr, 0f, 255f);
                    sg = Math.Clamp(sg, 0f, 255f);
                    sb = Math.Clamp(sb, 0f, 255f);
                }
                int o = y * Width + x;
                r[o] = sr * _gain[0] + _offset[0];
                g[o] = sg * _gain[1] + _offset[1];
                b[o] = sb * _gain[2] + _offset[2];
            }
        }
    }

    private static void Scale(ReadOnlySpan<float> source, float weight, Span<float> target)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var w = new Vector<float>(weight);
            for (; i <= source.Length - Vector<float>.Count; i += Vector<float>.Count)
                (new Vector<float>(source[i..]) * w).CopyTo(target[i..]);
        }
        for (; i < source.Length; i++) target[i] = source[i] * weight;
    }

    private static void AddScaled(ReadOnlySpan<float> source, float weight, Span<float> target)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var w = new Vector<float>(weight);
            for (; i <= source.Length - Vector<float>.Count; i += Vector<float>.Count)
                (new Vector<float>(target[i..]) + new Vector<float>(source[i..]) * w).CopyTo(target[i..]);
        }
        for (; i < source.Length; i++) target[i] += source[i] * weight;
    }

    /// <summary>For each output index along one axis: the first source index and the normalised kernel weights.</summary>
    private readonly struct Taps : IDisposable
    {
        public readonly int[] Start;
        // Weights of output i are _weights[_offset[i] .. _offset[i + 1]); packed, because near the image edge and
        // for extreme aspect ratios the tap count varies and a fixed stride would waste memory.
        private readonly int[] _offset;
        private readonly float[] _weights;

        private Taps(int[] start, int[] offset, float[] weights)
        {
            Start = start;
            _offset = offset;
            _weights = weights;
        }

        public ReadOnlySpan<float> WeightsOf(int index) => _weights.AsSpan(_offset[index], _offset[index + 1] - _offset[index]);

        public static Taps Create(int sourceSize, int targetSize, ResizeMethod method)
        {
            double scale = (double)sourceSize / targetSize;
            // The kernel is stretched by the scale factor when shrinking, so that it averages instead of sampling.
            double stretch = Math.Max(scale, 1.0);
            Func<double, double> kernel = method == ResizeMethod.Bicubic ? Cubic : Tent;
            // Kernel radius in source pixels: 1 (tent) or 2 (cubic) when enlarging, times the stretch when shrinking.
            double support = (method == ResizeMethod.Bicubic ? 2.0 : 1.0) * stretch;
            // Each output reads at most 2 * support + 1 source pixels.
            int capacity = (int)Math.Min(int.MaxValue, Math.Ceiling(targetSize * (2 * support + 2)));
            var start = ArrayPool<int>.Shared.Rent(targetSize);
            var offset = ArrayPool<int>.Shared.Rent(targetSize + 1);
            var weights = ArrayPool<float>.Shared.Rent(capacity);
            int used = 0;
            for (int i = 0; i < targetSize; i++)
            {
                // Source coordinate of the output pixel's centre, in a frame where pixel j covers [j, j+1).
                double centre = (i + 0.5) * scale;
                int first = Math.Max((int)Math.Floor(centre - support + 0.5), 0);
                int end = Math.Min((int)Math.Floor(centre + support + 0.5), sourceSize);
                double total = 0;
                for (int j = first; j < end; j++) total += kernel((j + 0.5 - centre) / stretch);
                // Taps beyond the image edge are dropped and the rest renormalised: edge pixels are clamped.
                // total > 0: the source pixel under the centre is always a tap, at distance <= 0.5, where
                // both kernels are above 0.5, and the cubic's negative lobes are smaller.
                start[i] = first;
                offset[i] = used;
                for (int j = first; j < end; j++) weights[used++] = (float)(kernel((j + 0.5 - centre) / stretch) / total);
            }
            offset[targetSize] = used;
            return new Taps(start, offset, weights);
        }

        private static double Tent(double x) => Math.Max(0.0, 1.0 - Math.Abs(x));

        /// <summary>Keys' cubic convolution kernel with a = -0.5, as PIL's BICUBIC filter.</summary>
        private static double Cubic(double x)
        {
            const double a = -0.5;
            x = Math.Abs(x);
            if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
            if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
            return 0;
        }

        public void Dispose()
        {
            ArrayPool<int>.Shared.Return(Start);
            ArrayPool<int>.Shared.Return(_offset);
            ArrayPool<float>.Shared.Return(_weights);
        }
    }
}
