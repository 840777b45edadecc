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
        int center = (maxValue + 1) >> 1;
        for (int i = 0; i < y.Length; i++)
        {
            int luma = y[i];
            int blue = cb[i] - center;
            int red = cr[i] - center;
            y[i] = Math.Clamp(luma + ((CrToR * red + Half) >> ScaleBits), 0, maxValue);
            cb[i] = Math.Clamp(luma + ((-CbToG * blue - CrToG * red + Half) >> ScaleBits), 0, maxValue);
            cr[i] = Math.Clamp(luma + ((CbToB * blue + Half) >> ScaleBits), 0, maxValue);
        }
    }
}
