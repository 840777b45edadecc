using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using MedSearch.Dicom;

namespace MedSearch.Imaging.Dicom;

/// <summary>
/// Decoded DICOM samples → display intensities 0..255, the one definition shared by indexing and querying:
/// BitsStored masking and sign extension, pixel padding, Modality LUT (rescale), VOI (the first window, else a
/// 1st–99th percentile stretch), MONOCHROME1 inversion, PALETTE COLOR expansion, YBR_FULL → RGB.
/// </summary>
public static class PixelPipeline
{
    /// <summary>Percentiles of the stretch used when a grey image carries no window: robust to a few hot or dead pixels.</summary>
    public const double LowPercentile = 0.01, HighPercentile = 0.99;

    /// <summary>
    /// What the pipeline takes from an instance's header rather than from a frame, read once for all its frames: a
    /// multi-frame palette image would otherwise expand its lookup tables (up to 3 × 65,536 entries) for every frame.
    /// What can fail is read when a frame first needs it, so that a bad attribute fails the read where it always did.
    /// </summary>
    public sealed class Instance
    {
        private readonly Lazy<PaletteLuts> _palette;
        private readonly Lazy<(double Slope, double Intercept)> _rescale;
        private readonly Lazy<(double Center, double Width, string Function)?> _window;

        public Instance(DicomDataset dataset, DicomPixelData pixels)
        {
            Pixels = pixels;
            Padding = PaddingRange(dataset, pixels.IsSigned);
            _palette = new(() => PaletteLuts.From(dataset, pixels));
            _rescale = new(() => Rescale(SharedItems(dataset, DicomTag.PixelValueTransformationSequence).Append(dataset)) ?? (1, 0));
            _window = new(() => Window(SharedItems(dataset, DicomTag.FrameVoiLutSequence).Append(dataset)));
        }

        public DicomPixelData Pixels { get; }

        /// <summary>The stored values Pixel Padding Value (and Range Limit) mark, or null when the instance has none.</summary>
        internal (float Low, float High)? Padding { get; }

        internal PaletteLuts Palette => _palette.Value;

        /// <summary>The rescale of a frame whose own functional group has none: the shared groups', else the top-level attributes.</summary>
        internal (double Slope, double Intercept) SharedRescale => _rescale.Value;

        /// <summary>The window of a frame whose own functional group has none: the shared groups', else the top-level attributes.</summary>
        internal (double Center, double Width, string Function)? SharedWindow => _window.Value;
    }

    /// <param name="instance">The instance's header, read once for all its frames.</param>
    /// <param name="samples">One frame in the codecs' output form: little-endian, interleaved, BytesPerSample each.</param>
    /// <param name="photometric">The photometric interpretation of <paramref name="samples"/> (a codec may have converted it).</param>
    /// <param name="frameGroup">The frame's per-frame functional group item (enhanced objects), or null.</param>
    public static PixelImage Render(Instance instance, ReadOnlySpan<byte> samples, string photometric, DicomDataset? frameGroup)
    {
        var pixels = instance.Pixels;
        int width = pixels.Columns, height = pixels.Rows, count = width * height;
        string interpretation = photometric.Trim();
        int channels = interpretation switch
        {
            "MONOCHROME1" or "MONOCHROME2" or "PALETTE COLOR" => 1,
            "RGB" or "YBR_FULL" or "YBR_FULL_422" => 3,
            // Reversible/irreversible colour transforms are undone by the JPEG 2000 codec, which then reports RGB.
            _ => throw new DicomException(pixels.Source, $"photometric interpretation {photometric} is not supported"),
        };
        if (pixels.SamplesPerPixel != channels)
            throw new DicomException(pixels.Source, $"{photometric} with {pixels.SamplesPerPixel} samples per pixel is not a valid combination");

        if (samples.Length < (long)count * channels * pixels.BytesPerSample)
            throw new DicomException(pixels.Source, $"frame holds {samples.Length} bytes, {count * channels} samples of {pixels.BytesPerSample} bytes need {(long)count * channels * pixels.BytesPerSample}");
        return interpretation switch
        {
            "MONOCHROME1" or "MONOCHROME2" => Grey(instance, frameGroup, samples, width, height, invert: interpretation == "MONOCHROME1"),
            "PALETTE COLOR" => Palette(instance.Palette, samples, pixels, width, height),
            "RGB" => Colour(samples, pixels, width, height, ycbcr: false),
            _ => Colour(samples, pixels, width, height, ycbcr: true),
        };
    }

    /// <summary>
    /// Stored values as numbers (PS3.5 8.1.1). Both producers, DicomPixelData.GetNativeFrame and every codec (the
    /// IFrameDecoder contract), have already sign-extended signed samples to the full sample, so those read as they
    /// are. Unsigned samples are masked to BitsStored here: RLE may leave the bits above set, and codecs keep them
    /// because the pydicom oracle does.
    /// </summary>
    private static void ReadStoredValues(ReadOnlySpan<byte> samples, DicomPixelData pixels, Span<float> values)
    {
        uint mask = StoredMask(pixels);
        // The casts read samples in host order; the project builds for linux-x64 only, which is little-endian like the frames.
        switch (pixels.BytesPerSample, pixels.IsSigned)
        {
            case (1, true) when pixels.BitsAllocated == 1:
                // Single bits unpack to 0 or 1, which nothing sign-extends: a set bit is -1.
                for (int i = 0; i < values.Length; i++) values[i] = -(samples[i] & 1);
                break;
            case (1, true): Widen(MemoryMarshal.Cast<byte, sbyte>(samples), values); break;
            case (2, true): Widen(MemoryMarshal.Cast<byte, short>(samples), values); break;
            case (_, true): Widen(MemoryMarshal.Cast<byte, int>(samples), values); break;
            case (1, false): Masked(samples, values, mask); break;
            case (2, false): Masked(MemoryMarshal.Cast<byte, ushort>(samples), values, mask); break;
            default: Masked(MemoryMarshal.Cast<byte, uint>(samples), values, mask); break;
        }
    }

    private static uint StoredMask(DicomPixelData pixels)
    {
        int bits = Math.Clamp(pixels.BitsStored, 1, 32);
        return bits == 32 ? uint.MaxValue : (1u << bits) - 1;
    }

    /// <summary>
    /// Samples of 8 or 16 bits as indices into a table of every stored value they can hold, in the order of the
    /// stored values: (raw &amp; And) ^ Flip, whose stored value is index - Offset. A frame holds many pixels but few
    /// distinct values, so whatever the pipeline computes per stored value is computed once per value that occurs
    /// and then looked up per pixel, with the same arithmetic and so the same result as per pixel.
    /// </summary>
    private readonly record struct StoredIndex(int Bytes, ushort And, ushort Flip, int Offset)
    {
        public int TableSize => Bytes == 1 ? 1 << 8 : 1 << 16;

        /// <summary>Null for 32-bit samples (too many values for a table) and signed single bits (no sign to flip).</summary>
        public static StoredIndex? For(DicomPixelData pixels)
        {
            int bytes = pixels.BytesPerSample;
            if (bytes > 2 || (pixels.IsSigned && pixels.BitsAllocated == 1)) return null;
            // Signed samples are already sign-extended to the full sample, so flipping the top bit orders them.
            ushort top = (ushort)(bytes == 1 ? 0x80 : 0x8000);
            return pixels.IsSigned
                ? new StoredIndex(bytes, (ushort)(top * 2 - 1), top, top)
                : new StoredIndex(bytes, (ushort)StoredMask(pixels), 0, 0);
        }

        /// <summary>How many pixels hold each index; the first and last index that occur.</summary>
        public (int First, int Last) Count(ReadOnlySpan<byte> samples, int pixels, Span<int> histogram)
        {
            histogram.Clear();
            if (Bytes == 1)
                foreach (byte raw in samples[..pixels]) histogram[(raw & And) ^ Flip]++;
            else
                foreach (ushort raw in MemoryMarshal.Cast<byte, ushort>(samples)[..pixels]) histogram[(raw & And) ^ Flip]++;
            int first = 0, last = histogram.Length - 1;
            while (histogram[first] == 0) first++;
            while (histogram[last] == 0) last--;
            return (first, last);
        }

        /// <summary>
        /// Every pixel's entry of <paramref name="table"/>, which holds the indices from <paramref name="first"/> on,
        /// <paramref name="channels"/> values each (1 for grey, 3 for a palette's RGB).
        /// </summary>
        public void Look(ReadOnlySpan<byte> samples, ReadOnlySpan<float> table, int first, int channels, Span<float> output)
        {
            int pixels = output.Length / channels;
            if (Bytes == 1)
                LookUp(samples[..pixels], table, first, channels, output);
            else
                LookUp(MemoryMarshal.Cast<byte, ushort>(samples)[..pixels], table, first, channels, output);
        }

        private void LookUp<T>(ReadOnlySpan<T> raw, ReadOnlySpan<float> table, int first, int channels, Span<float> output)
            where T : unmanaged, IBinaryInteger<T>
        {
            if (channels == 1)
            {
                for (int i = 0; i < raw.Length; i++) output[i] = table[((int.CreateTruncating(raw[i]) & And) ^ Flip) - first];
                return;
            }
            for (int i = 0, o = 0; i < raw.Length; i++, o += channels)
                table.Slice((((int.CreateTruncating(raw[i]) & And) ^ Flip) - first) * channels, channels).CopyTo(output.Slice(o, channels));
        }
    }

    private static void Widen<T>(ReadOnlySpan<T> stored, Span<float> values) where T : unmanaged, IBinaryInteger<T>
    {
        for (int i = 0; i < values.Length; i++) values[i] = int.CreateTruncating(stored[i]);
    }

    private static void Masked<T>(ReadOnlySpan<T> stored, Span<float> values, uint mask) where T : unmanaged, IBinaryInteger<T>
    {
        for (int i = 0; i < values.Length; i++) values[i] = uint.CreateTruncating(stored[i]) & mask;
    }

    private static PixelImage Grey(Instance instance, DicomDataset? frameGroup, ReadOnlySpan<byte> samples, int width, int height, bool invert)
    {
        var pixels = instance.Pixels;
        int count = width * height;
        var output = GC.AllocateUninitializedArray<float>(count);
        if (StoredIndex.For(pixels) is not { } index)
        {
            var values = ArrayPool<float>.Shared.Rent(count);
            try
            {
                ReadStoredValues(samples, pixels, values.AsSpan(0, count));
                Transform(instance, frameGroup, values.AsSpan(0, count), [], output, invert);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(values);
            }
            return new PixelImage(width, height, 1, output);
        }

        var histogram = ArrayPool<int>.Shared.Rent(index.TableSize);
        var table = ArrayPool<float>.Shared.Rent(2 * index.TableSize);
        try
        {
            var (first, last) = index.Count(samples, count, histogram.AsSpan(0, index.TableSize));
            int entries = last - first + 1;
            var stored = table.AsSpan(0, entries);
            var display = table.AsSpan(entries, entries);
            for (int i = 0; i < entries; i++) stored[i] = first + i - index.Offset;
            Transform(instance, frameGroup, stored, histogram.AsSpan(first, entries), display, invert);
            index.Look(samples, display, first, 1, output);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(histogram);
            ArrayPool<float>.Shared.Return(table);
        }
        return new PixelImage(width, height, 1, output);
    }

    /// <summary>
    /// Stored grey values → display intensities: padding, Modality LUT, VOI window or stretch, MONOCHROME1 inversion,
    /// padding shown black. <paramref name="values"/> are either every pixel's (<paramref name="counts"/> empty) or
    /// every distinct stored value's, with how many pixels hold each, which only the stretch needs.
    /// </summary>
    private static void Transform(Instance instance, DicomDataset? frameGroup, Span<float> values, ReadOnlySpan<int> counts,
        Span<float> output, bool invert)
    {
        if (instance.Padding is { } padding) MarkPadding(padding.Low, padding.High, values);
        var (slope, intercept) = Rescale(FrameItems(frameGroup, DicomTag.PixelValueTransformationSequence)) ?? instance.SharedRescale;
        if (slope != 1 || intercept != 0)
            for (int i = 0; i < values.Length; i++) values[i] = (float)(values[i] * slope + intercept);

        var window = Window(FrameItems(frameGroup, DicomTag.FrameVoiLutSequence)) ?? instance.SharedWindow;
        if (window is { } w)
            ApplyWindow(values, output, w.Center, w.Width, w.Function, instance.Pixels.Source);
        else
            Stretch(values, counts, output);
        // Only padding is NaN: stored values are finite and so is every rescale that is applied.
        for (int i = 0; i < output.Length; i++)
            output[i] = float.IsNaN(values[i]) ? 0f : invert ? 255f - output[i] : output[i];
    }

    /// <summary>
    /// Pixel Padding Value (and Range Limit) mark pixels that are not part of the image (PS3.3 C.7.5.1.1.2): the
    /// corners around a round CT field of view, the background beside a mammogram. They become NaN here, so that the
    /// stretch ignores them (a quarter of a CT slice at -2000 would otherwise wash the patient out to light grey),
    /// and are shown black whatever the photometric interpretation.
    /// </summary>
    /// <param name="values">Stored values, before the Modality LUT: the padding value is a stored value.</param>
    private static void MarkPadding(float low, float high, Span<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (values[i] >= low && values[i] <= high) values[i] = float.NaN;
    }

    private static (float Low, float High)? PaddingRange(DicomDataset dataset, bool signed)
    {
        if (StoredWord(dataset, DicomTag.PixelPaddingValue, signed) is not { } value) return null;
        int limit = StoredWord(dataset, DicomTag.PixelPaddingRangeLimit, signed) ?? value;
        return (Math.Min(value, limit), Math.Max(value, limit));
    }

    /// <summary>
    /// A US-or-SS value interpreted by the pixel representation, as PS3.3 defines these attributes: their VR depends
    /// on the writer, and under implicit VR it is not known at all. A malformed value is no padding rather than a bad image.
    /// </summary>
    private static int? StoredWord(DicomDataset dataset, DicomTag tag, bool signed)
    {
        try
        {
            if (dataset.GetUInt16s(tag) is not [var word, ..]) return null;
            return signed ? (short)word : word;
        }
        catch (DicomException)
        {
            return null;
        }
    }

    /// <summary>The rescale of the first of <paramref name="sources"/> that has one; null when none has.</summary>
    private static (double Slope, double Intercept)? Rescale(IEnumerable<DicomDataset> sources)
    {
        foreach (var source in sources)
        {
            var slope = source.GetDouble(DicomTag.RescaleSlope);
            var intercept = source.GetDouble(DicomTag.RescaleIntercept);
            if (slope is null && intercept is null) continue;
            double s = slope ?? 1;
            // A slope of 0 (seen in the wild) would flatten the image to one value: treat it as absent.
            return (s == 0 || !double.IsFinite(s) ? 1 : s, intercept is { } i && double.IsFinite(i) ? i : 0);
        }
        return null;
    }

    /// <summary>The window of the first of <paramref name="sources"/> that has a usable one; null when none has.</summary>
    private static (double Center, double Width, string Function)? Window(IEnumerable<DicomDataset> sources)
    {
        foreach (var source in sources)
        {
            double? center, width;
            try
            {
                center = source.GetDouble(DicomTag.WindowCenter);
                width = source.GetDouble(DicomTag.WindowWidth);
            }
            catch (DicomException)
            {
                // An unparsable window is a presentation hint gone bad, not a bad image: fall back to the stretch.
                continue;
            }
            if (center is { } c && width is { } w && double.IsFinite(c) && double.IsFinite(w) && w >= 1)
                return (c, w, source.GetString(DicomTag.VoiLutFunction)?.Trim() ?? "LINEAR");
        }
        return null;
    }

    /// <summary>The macro's items in a frame's own functional group (enhanced objects), which override the shared ones.</summary>
    private static IReadOnlyList<DicomDataset> FrameItems(DicomDataset? frameGroup, DicomTag macro) =>
        frameGroup is null ? [] : frameGroup.GetSequence(macro);

    private static IEnumerable<DicomDataset> SharedItems(DicomDataset dataset, DicomTag macro)
    {
        foreach (var shared in dataset.GetSequence(DicomTag.SharedFunctionalGroupsSequence))
            foreach (var item in shared.GetSequence(macro)) yield return item;
    }

    /// <summary>VOI LUT functions of PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT, SIGMOID), output 0..255.</summary>
    private static void ApplyWindow(ReadOnlySpan<float> values, Span<float> output, double c, double w, string function, string source)
    {
        switch (function)
        {
            case "LINEAR":
                {
                    double low = c - 0.5 - (w - 1) / 2, high = c - 0.5 + (w - 1) / 2;
                    for (int i = 0; i < values.Length; i++)
                    {
                        double x = values[i];
                        output[i] = x <= low ? 0f : x > high ? 255f : (float)(((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
                    }
                    break;
                }
            case "LINEAR_EXACT":
                {
                    double low = c - w / 2, high = c + w / 2;
                    for (int i = 0; i < values.Length; i++)
                    {
                        double x = values[i];
                        output[i] = x <= low ? 0f : x > high ? 255f : (float)((x - c) / w + 0.5) * 255;
                    }
                    break;
                }
            case "SIGMOID":
                for (int i = 0; i < values.Length; i++)
                    output[i] = (float)(255 / (1 + Math.Exp(-4 * (values[i] - c) / w)));
                break;
            default:
                throw new DicomException(source, $"VOI LUT Function {function} is not one of LINEAR, LINEAR_EXACT, SIGMOID");
        }
    }

    /// <summary>
    /// Maps the 1st..99th percentile to 0..255, exact and deterministic: by counting for whole numbers over a modest
    /// range, by sorting otherwise. Padding (NaN) takes no part. <paramref name="counts"/>: how many pixels hold each
    /// value (empty: one each); the percentiles are those of the pixels either way.
    /// </summary>
    private static void Stretch(ReadOnlySpan<float> values, ReadOnlySpan<int> counts, Span<float> output)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        int count = 0;
        bool whole = true;
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            int n = counts.IsEmpty ? 1 : counts[i];
            if (float.IsNaN(v) || n == 0) continue; // padding, or a value no pixel holds
            count += n;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
            whole &= v == MathF.Floor(v);
        }
        if (count == 0)
        {
            output.Clear();
            return;
        }
        int lowRank = (int)Math.Round(LowPercentile * (count - 1)), highRank = (int)Math.Round(HighPercentile * (count - 1));
        var (low, high) = whole && max - min < CountingRange
            ? RanksByCounting(values, counts, min, (int)(max - min) + 1, lowRank, highRank)
            : RanksBySorting(values, counts, count, lowRank, highRank);
        if (high <= low)
        {
            // Flat or nearly flat: use the full range so a binary mask or a constant image still renders.
            low = min;
            high = max;
        }
        float scale = high > low ? 255f / (high - low) : 0f;
        for (int i = 0; i < values.Length; i++)
            output[i] = Math.Clamp((values[i] - low) * scale, 0f, 255f);
    }

    /// <summary>Stored integers (after an integer rescale: nearly every CT, MR, CR, DX) span at most 2^20 values.</summary>
    private const float CountingRange = 1 << 20;

    /// <summary>Order statistics by a histogram: linear time, the same values the sort gives.</summary>
    private static (float Low, float High) RanksByCounting(ReadOnlySpan<float> values, ReadOnlySpan<int> counts, float min, int bins,
        int lowRank, int highRank)
    {
        var rented = ArrayPool<int>.Shared.Rent(bins);
        try
        {
            var histogram = rented.AsSpan(0, bins);
            histogram.Clear();
            for (int i = 0; i < values.Length; i++)
            {
                int n = counts.IsEmpty ? 1 : counts[i];
                // A value no pixel holds may lie outside min..max (between the stored values that occur and padding).
                if (!float.IsNaN(values[i]) && n > 0) histogram[(int)(values[i] - min)] += n;
            }
            float low = min, high = min;
            long seen = 0;
            bool lowFound = false;
            for (int bin = 0; bin < bins; bin++)
            {
                seen += histogram[bin];
                if (!lowFound && seen > lowRank) { low = min + bin; lowFound = true; }
                if (seen > highRank) { high = min + bin; break; }
            }
            return (low, high);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rented);
        }
    }

    /// <param name="count">The pixels that are not padding: the sum of <paramref name="counts"/> over the values that are not NaN.</param>
    private static (float Low, float High) RanksBySorting(ReadOnlySpan<float> values, ReadOnlySpan<int> counts, int count, int lowRank, int highRank)
    {
        int length = counts.IsEmpty ? count : values.Length;
        var keys = ArrayPool<float>.Shared.Rent(length);
        var weights = ArrayPool<int>.Shared.Rent(length);
        try
        {
            int n = 0;
            for (int i = 0; i < values.Length; i++)
            {
                if (float.IsNaN(values[i]) || (!counts.IsEmpty && counts[i] == 0)) continue;
                keys[n] = values[i];
                weights[n++] = counts.IsEmpty ? 1 : counts[i];
            }
            var sorted = keys.AsSpan(0, n);
            sorted.Sort(weights.AsSpan(0, n));
            // The value of rank r is the first whose cumulative count passes r.
            float low = sorted[^1], high = sorted[^1];
            long seen = 0;
            bool lowFound = false;
            for (int i = 0; i < n; i++)
            {
                seen += weights[i];
                if (!lowFound && seen > lowRank) { low = sorted[i]; lowFound = true; }
                if (seen > highRank) { high = sorted[i]; break; }
            }
            return (low, high);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(keys);
            ArrayPool<int>.Shared.Return(weights);
        }
    }

    private static PixelImage Colour(ReadOnlySpan<byte> samples, DicomPixelData pixels, int width, int height, bool ycbcr)
    {
        var output = GC.AllocateUninitializedArray<float>(width * height * 3);
        // 8-bit RGB, nearly every colour image: the stored values are already the display values.
        if (!ycbcr && pixels.BytesPerSample == 1 && !pixels.IsSigned && pixels.BitsStored <= 8)
        {
            WidenBytes(samples[..output.Length], (byte)StoredMask(pixels), output);
            return new PixelImage(width, height, 3, output);
        }
        var values = ArrayPool<float>.Shared.Rent(output.Length);
        try
        {
            var stored = values.AsSpan(0, output.Length);
            ReadStoredValues(samples, pixels, stored);
            int bitsStored = pixels.BitsStored;
            float scale = bitsStored > 8 ? 255f / ((1 << Math.Min(bitsStored, 30)) - 1) : 1f;
            for (int i = 0; i < stored.Length; i += 3)
            {
                float a = stored[i] * scale, b = stored[i + 1] * scale, c = stored[i + 2] * scale;
                if (ycbcr)
                {
                    // YBR_FULL is full-range ITU-R BT.601 (PS3.3 C.7.6.3.1.2).
                    float cb = b - 128f, cr = c - 128f;
                    (a, b, c) = (a + 1.402f * cr, a - 0.344136f * cb - 0.714136f * cr, a + 1.772f * cb);
                }
                output[i] = Math.Clamp(a, 0f, 255f);
                output[i + 1] = Math.Clamp(b, 0f, 255f);
                output[i + 2] = Math.Clamp(c, 0f, 255f);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(values);
        }
        return new PixelImage(width, height, 3, output);
    }

    /// <summary>(float)(byte &amp; mask) for every byte.</summary>
    private static void WidenBytes(ReadOnlySpan<byte> bytes, byte mask, Span<float> output)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var masks = new Vector<byte>(mask);
            int step = Vector<byte>.Count, quarter = Vector<uint>.Count;
            for (; i <= bytes.Length - step; i += step)
            {
                Vector.Widen(new Vector<byte>(bytes[i..]) & masks, out var low, out var high);
                Vector.Widen(low, out var a, out var b);
                Vector.Widen(high, out var c, out var d);
                Vector.ConvertToSingle(a).CopyTo(output[i..]);
                Vector.ConvertToSingle(b).CopyTo(output[(i + quarter)..]);
                Vector.ConvertToSingle(c).CopyTo(output[(i + 2 * quarter)..]);
                Vector.ConvertToSingle(d).CopyTo(output[(i + 3 * quarter)..]);
            }
        }
        for (; i < bytes.Length; i++) output[i] = bytes[i] & mask;
    }

    private static PixelImage Palette(PaletteLuts palette, ReadOnlySpan<byte> samples, DicomPixelData pixels, int width, int height)
    {
        int count = width * height;
        var output = GC.AllocateUninitializedArray<float>(count * 3);
        var index = StoredIndex.For(pixels);
        bool indexed = index is not null;
        // Every stored value's colour once, then one copy per pixel; 32-bit indices look each pixel up on its own.
        int entries = index?.TableSize ?? count;
        var values = ArrayPool<float>.Shared.Rent(entries);
        var colours = ArrayPool<float>.Shared.Rent(entries * 3);
        try
        {
            var stored = values.AsSpan(0, entries);
            if (indexed)
                for (int i = 0; i < entries; i++) stored[i] = i - index!.Value.Offset;
            else
                ReadStoredValues(samples, pixels, stored);
            var table = indexed ? colours.AsSpan(0, entries * 3) : output;
            float[] red = palette.Red.Entries, green = palette.Green.Entries, blue = palette.Blue.Entries;
            for (int i = 0, o = 0; i < stored.Length; i++, o += 3)
            {
                table[o] = red[palette.Red.Position(stored[i])];
                table[o + 1] = green[palette.Green.Position(stored[i])];
                table[o + 2] = blue[palette.Blue.Position(stored[i])];
            }
            index?.Look(samples, table, 0, 3, output);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(values);
            ArrayPool<float>.Shared.Return(colours);
        }
        return new PixelImage(width, height, 3, output);
    }

    internal sealed record PaletteLuts(PaletteLut Red, PaletteLut Green, PaletteLut Blue)
    {
        public static PaletteLuts From(DicomDataset dataset, DicomPixelData pixels) => new(
            PaletteChannel(dataset, DicomTag.RedPaletteColorLookupTableDescriptor, DicomTag.RedPaletteColorLookupTableData, DicomTag.SegmentedRedPaletteColorLookupTableData, pixels),
            PaletteChannel(dataset, DicomTag.GreenPaletteColorLookupTableDescriptor, DicomTag.GreenPaletteColorLookupTableData, DicomTag.SegmentedGreenPaletteColorLookupTableData, pixels),
            PaletteChannel(dataset, DicomTag.BluePaletteColorLookupTableDescriptor, DicomTag.BluePaletteColorLookupTableData, DicomTag.SegmentedBluePaletteColorLookupTableData, pixels));
    }

    internal sealed record PaletteLut(float[] Entries, int FirstMapped)
    {
        /// <summary>Indices below the first mapped value take the first entry, above the table the last (PS3.3 C.7.6.3.1.5).</summary>
        public int Position(float index) => Math.Clamp((int)index - FirstMapped, 0, Entries.Length - 1);
    }

    private static PaletteLut PaletteChannel(DicomDataset dataset, DicomTag descriptorTag, DicomTag dataTag, DicomTag segmentedTag, DicomPixelData pixels)
    {
        string source = pixels.Source;
        var descriptor = dataset.GetUInt16s(descriptorTag);
        if (descriptor.Length != 3)
            throw new DicomException(source, $"palette descriptor {descriptorTag} has {descriptor.Length} values, needs 3");
        int entries = descriptor[0] == 0 ? 65536 : descriptor[0];
        // The first mapped value is US or SS depending on the pixel representation; the bit pattern tells which here.
        int firstMapped = descriptor[1] > short.MaxValue && pixels.IsSigned ? (short)descriptor[1] : descriptor[1];
        int bits = descriptor[2];
        var segmented = dataset.GetUInt16s(segmentedTag);
        var data = segmented.Length > 0 ? ExpandSegments(segmented, entries, segmentedTag, source) : dataset.GetUInt16s(dataTag);
        var lut = new float[entries];
        if (bits == 8 && data.Length * 2 >= entries && data.Length < entries)
        {
            // 8-bit entries packed two to a word (low byte first), as some writers store them.
            for (int i = 0; i < entries; i++) lut[i] = (byte)(data[i / 2] >> (i % 2 * 8));
        }
        else
        {
            if (data.Length < entries)
                throw new DicomException(source, $"palette data {dataTag} has {data.Length} entries, the descriptor says {entries}");
            // 16-bit entries scale to 0..255; 8-bit entries stored one per word are already 0..255.
            float scale = bits == 16 ? 255f / 65535f : 1f;
            for (int i = 0; i < entries; i++) lut[i] = Math.Min(data[i] * scale, 255f);
        }
        return new PaletteLut(lut, firstMapped);
    }

    /// <summary>
    /// Segmented palette data (PS3.3 C.7.9.2): discrete runs, linear ramps from the previous value, and indirect
    /// segments that replay earlier segments. Bounded by the descriptor's entry count so a hostile table cannot grow.
    /// </summary>
    private static ushort[] ExpandSegments(ushort[] words, int entries, DicomTag tag, string source)
    {
        var output = new List<ushort>(entries);
        Expand(0, int.MaxValue, depth: 0);
        return output.ToArray();

        // Reads up to maxSegments segments from word `position`; an indirect segment replays `length` segments from its offset.
        void Expand(int position, int maxSegments, int depth)
        {
            if (depth > 1) throw Bad("an indirect segment points at another indirect segment");
            for (int segment = 0; segment < maxSegments && position < words.Length; segment++)
            {
                if (position + 2 > words.Length) throw Bad("a segment header is cut off");
                int opcode = words[position], length = words[position + 1];
                position += 2;
                switch (opcode)
                {
                    case 0:
                        if (position + length > words.Length) throw Bad($"a discrete segment claims {length} entries past the data");
                        for (int i = 0; i < length; i++) Add(words[position + i]);
                        position += length;
                        break;
                    case 1:
                        if (position + 1 > words.Length || output.Count == 0) throw Bad("a linear segment has no start or end value");
                        double from = output[^1], to = words[position++];
                        for (int i = 1; i <= length; i++) Add((ushort)Math.Round(from + (to - from) * i / length));
                        break;
                    case 2:
                        if (position + 2 > words.Length) throw Bad("an indirect segment's offset is cut off");
                        // The offset counts bytes from the start of the data, least significant word first.
                        long offset = (words[position] | ((long)words[position + 1] << 16)) / 2;
                        position += 2;
                        if (offset >= words.Length) throw Bad("an indirect segment points past the data");
                        Expand((int)offset, length, depth + 1);
                        break;
                    default:
                        throw Bad($"segment opcode {opcode} is not 0, 1 or 2");
                }
            }
        }

        void Add(ushort value)
        {
            if (output.Count >= entries) throw Bad($"the segments expand to more than the descriptor's {entries} entries");
            output.Add(value);
        }

        DicomException Bad(string reason) => new(source, $"segmented palette {tag}: {reason}");
    }
}
