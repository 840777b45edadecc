using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// YCbCr (JFIF, full range) to RGB with libjpeg's jdcolor.c fixed-point arithmetic, so that the result matches the
/// reference decoders (GDCM, DCMTK) bit for bit given the same YCbCr input.
/// </summary>
internal static class YCbCr
{
    private const int ScaleBits = 16;
    private const int Half = 1 << (ScaleBits - 1);
    // FIX(x) = (int)(x * 2^16 + 0.5) for the ITU-R BT.601 coefficients.
    private const int CrToR = 91881;   // 1.40200
    private const int CbToB = 116130;  // 1.77200
    private const int CrToG = 46802;   // 0.71414
    private const int CbToG = 22554;   // 0.34414

    /// <summary>Converts in place: the Y, Cb and Cr rows become R, G and B, clamped to 0..maxValue.</summary>
    public static void ToRgb(Span<int> y, Span<int> cb, Span<int> cr, int maxValue)
    {
        int n = y.Length;
        if (cb.Length != n || cr.Length != n)
            throw new ArgumentException("The Y, Cb and Cr rows differ in length.");
        int center = (maxValue + 1) >> 1;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // The same integer arithmetic, eight pixels at a time (>> on signed lanes is arithmetic, as in C).
            ref int yRef = ref MemoryMarshal.GetReference(y);
            ref int cbRef = ref MemoryMarshal.GetReference(cb);
            ref int crRef = ref MemoryMarshal.GetReference(cr);
            Vector256<int> centre = Vector256.Create(center), half = Vector256.Create(Half), max = Vector256.Create(maxValue);
            for (; i <= n - Vector256<int>.Count; i += Vector256<int>.Count)
            {
                Vector256<int> luma = Vector256.LoadUnsafe(ref yRef, (nuint)i);
                Vector256<int> blue = Vector256.LoadUnsafe(ref cbRef, (nuint)i) - centre;
                Vector256<int> red = Vector256.LoadUnsafe(ref crRef, (nuint)i) - centre;
                Clamp(luma + ((red * CrToR + half) >> ScaleBits), max).StoreUnsafe(ref yRef, (nuint)i);
                Clamp(luma + ((blue * -CbToG - red * CrToG + half) >> ScaleBits), max).StoreUnsafe(ref cbRef, (nuint)i);
                Clamp(luma + ((blue * CbToB + half) >> ScaleBits), max).StoreUnsafe(ref crRef, (nuint)i);
            }
        }
        for (; i < n; i++)
        {
            int luma = y[i];
            int blue = cb[i] - center;
            int red = cr[i] - center;
            y[i] = Math.Clamp(luma + ((CrToR * red + Half) >> ScaleBits), 0, maxValue);
            cb[i] = Math.Clamp(luma + ((-CbToG * blue - CrToG * red + Half) >> ScaleBits), 0, maxValue);
            cr[i] = Math.Clamp(luma + ((CbToB * blue + Half) >> ScaleBits), 0, maxValue);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Clamp(Vector256<int> value, Vector256<int> max) =>
        Vector256.Min(Vector256.Max(value, Vector256<int>.Zero), max);
}
