using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>The sample precisions of DCT JPEG, as type arguments so that the JIT compiles each one's shifts as constants.</summary>
internal interface IDctPrecision
{
    static abstract int Bits { get; }

    /// <summary>libjpeg's PASS1_BITS: 12-bit data gives up a bit of intermediate precision so that 32-bit sums cannot overflow.</summary>
    static abstract int Pass1Bits { get; }
}

internal readonly struct EightBitDct : IDctPrecision
{
    public static int Bits => 8;
    public static int Pass1Bits => 2;
}

internal readonly struct TwelveBitDct : IDctPrecision
{
    public static int Bits => 12;
    public static int Pass1Bits => 1;
}

/// <summary>
/// libjpeg's "islow" inverse DCT (jidctint.c, the default of the libjpeg 6b inside GDCM and DCMTK), operation for
/// operation, so that our samples are theirs: the reference decodes this project is checked against use it.
/// </summary>
internal static unsafe class IslowIdct
{
    private const int ConstBits = 13;
    // FIX(x) = (int)(x * 2^13 + 0.5), the constants of jidctint.c.
    private const int Fix0298631336 = 2446;
    private const int Fix0390180644 = 3196;
    private const int Fix0541196100 = 4433;
    private const int Fix0765366865 = 6270;
    private const int Fix0899976223 = 7373;
    private const int Fix1175875602 = 9633;
    private const int Fix1501321110 = 12299;
    private const int Fix1847759065 = 15137;
    private const int Fix1961570560 = 16069;
    private const int Fix2053119869 = 16819;
    private const int Fix2562915447 = 20995;
    private const int Fix3072711026 = 25172;

    /// <summary>
    /// Transforms dequantised coefficients (natural order) into level-shifted, range-limited samples, and clears the
    /// coefficients for the next block. Both passes run on all eight columns (then rows) at once, one per vector lane;
    /// libjpeg's shortcuts for all-zero columns and rows give the same numbers as the full formulas, so skipping them
    /// changes nothing.
    /// </summary>
    public static void Transform<TPrecision>(int* coefficients, short* samples) where TPrecision : IDctPrecision
    {
        int pass1 = TPrecision.Pass1Bits;
        // Pass 1: each lane a column; the results are scaled up by 2^PASS1_BITS.
        Butterfly(Vector256.Load(coefficients), Vector256.Load(coefficients + 8), Vector256.Load(coefficients + 16), Vector256.Load(coefficients + 24),
            Vector256.Load(coefficients + 32), Vector256.Load(coefficients + 40), Vector256.Load(coefficients + 48), Vector256.Load(coefficients + 56),
            ConstBits - pass1, out var w0, out var w1, out var w2, out var w3, out var w4, out var w5, out var w6, out var w7);
        Transpose(ref w0, ref w1, ref w2, ref w3, ref w4, ref w5, ref w6, ref w7);
        // Pass 2: each lane a row; descaled by 2^(PASS1_BITS + 3) as well.
        Butterfly(w0, w1, w2, w3, w4, w5, w6, w7, ConstBits + pass1 + 3,
            out var s0, out var s1, out var s2, out var s3, out var s4, out var s5, out var s6, out var s7);
        s0 = RangeLimit<TPrecision>(s0);
        s1 = RangeLimit<TPrecision>(s1);
        s2 = RangeLimit<TPrecision>(s2);
        s3 = RangeLimit<TPrecision>(s3);
        s4 = RangeLimit<TPrecision>(s4);
        s5 = RangeLimit<TPrecision>(s5);
        s6 = RangeLimit<TPrecision>(s6);
        s7 = RangeLimit<TPrecision>(s7);
        Transpose(ref s0, ref s1, ref s2, ref s3, ref s4, ref s5, ref s6, ref s7);
        Vector256.Narrow(s0, s1).Store(samples);
        Vector256.Narrow(s2, s3).Store(samples + 16);
        Vector256.Narrow(s4, s5).Store(samples + 32);
        Vector256.Narrow(s6, s7).Store(samples + 48);
        new Span<int>(coefficients, 64).Clear();
    }

    /// <summary>The samples of a block whose only coefficient is its dequantised DC term: what <see cref="Transform{TPrecision}"/> gives, without the passes.</summary>
    public static Vector128<short> Flat<TPrecision>(int dc) where TPrecision : IDctPrecision
    {
        int pass1 = TPrecision.Pass1Bits;
        int sample = RangeLimit<TPrecision>(Vector256.Create(((dc << pass1) + (1 << (pass1 + 2))) >> (pass1 + 3))).ToScalar();
        return Vector128.Create((short)sample);
    }

    /// <summary>
    /// One 8-point pass of jidctint.c, lane by lane: the even part (tmp10..tmp13) and odd part (tmp0..tmp3), scaled by
    /// 2^CONST_BITS, then summed, differenced and descaled (DESCALE: rounded) by <paramref name="shift"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly(Vector256<int> x0, Vector256<int> x1, Vector256<int> x2, Vector256<int> x3,
        Vector256<int> x4, Vector256<int> x5, Vector256<int> x6, Vector256<int> x7, int shift,
        out Vector256<int> y0, out Vector256<int> y1, out Vector256<int> y2, out Vector256<int> y3,
        out Vector256<int> y4, out Vector256<int> y5, out Vector256<int> y6, out Vector256<int> y7)
    {
        Vector256<int> z1 = (x2 + x6) * Fix0541196100;
        Vector256<int> even2 = z1 - x6 * Fix1847759065;
        Vector256<int> even3 = z1 + x2 * Fix0765366865;
        // The rounding term of the final descale is folded into the even part, which every output sums once.
        Vector256<int> round = Vector256.Create(1 << (shift - 1));
        Vector256<int> even0 = ((x0 + x4) << ConstBits) + round;
        Vector256<int> even1 = ((x0 - x4) << ConstBits) + round;
        Vector256<int> tmp10 = even0 + even3;
        Vector256<int> tmp13 = even0 - even3;
        Vector256<int> tmp11 = even1 + even2;
        Vector256<int> tmp12 = even1 - even2;

        Vector256<int> z5 = (x7 + x5 + x3 + x1) * Fix1175875602;
        Vector256<int> z3 = (x7 + x3) * -Fix1961570560 + z5;
        Vector256<int> z4 = (x5 + x1) * -Fix0390180644 + z5;
        z1 = (x7 + x1) * -Fix0899976223;
        Vector256<int> z2 = (x5 + x3) * -Fix2562915447;
        Vector256<int> tmp0 = x7 * Fix0298631336 + z1 + z3;
        Vector256<int> tmp1 = x5 * Fix2053119869 + z2 + z4;
        Vector256<int> tmp2 = x3 * Fix3072711026 + z2 + z3;
        Vector256<int> tmp3 = x1 * Fix1501321110 + z1 + z4;

        y0 = Vector256.ShiftRightArithmetic(tmp10 + tmp3, shift);
        y7 = Vector256.ShiftRightArithmetic(tmp10 - tmp3, shift);
        y1 = Vector256.ShiftRightArithmetic(tmp11 + tmp2, shift);
        y6 = Vector256.ShiftRightArithmetic(tmp11 - tmp2, shift);
        y2 = Vector256.ShiftRightArithmetic(tmp12 + tmp1, shift);
        y5 = Vector256.ShiftRightArithmetic(tmp12 - tmp1, shift);
        y3 = Vector256.ShiftRightArithmetic(tmp13 + tmp0, shift);
        y4 = Vector256.ShiftRightArithmetic(tmp13 - tmp0, shift);
    }

    /// <summary>Transposes the 8x8 block held as eight row vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        if (Avx2.IsSupported)
        {
            // Pairs of 32-bit lanes, then 64-bit pairs, within each 128-bit half; then the halves swap across vectors.
            Vector256<int> t0 = Avx2.UnpackLow(r0, r1), t1 = Avx2.UnpackHigh(r0, r1);
            Vector256<int> t2 = Avx2.UnpackLow(r2, r3), t3 = Avx2.UnpackHigh(r2, r3);
            Vector256<int> t4 = Avx2.UnpackLow(r4, r5), t5 = Avx2.UnpackHigh(r4, r5);
            Vector256<int> t6 = Avx2.UnpackLow(r6, r7), t7 = Avx2.UnpackHigh(r6, r7);
            Vector256<int> u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32(), u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32();
            Vector256<int> u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32(), u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32();
            Vector256<int> u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32(), u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
            Vector256<int> u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32(), u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();
            r0 = Avx2.Permute2x128(u0, u4, 0x20);
            r4 = Avx2.Permute2x128(u0, u4, 0x31);
            r1 = Avx2.Permute2x128(u1, u5, 0x20);
            r5 = Avx2.Permute2x128(u1, u5, 0x31);
            r2 = Avx2.Permute2x128(u2, u6, 0x20);
            r6 = Avx2.Permute2x128(u2, u6, 0x31);
            r3 = Avx2.Permute2x128(u3, u7, 0x20);
            r7 = Avx2.Permute2x128(u3, u7, 0x31);
            return;
        }
        int* block = stackalloc int[64];
        r0.Store(block);
        r1.Store(block + 8);
        r2.Store(block + 16);
        r3.Store(block + 24);
        r4.Store(block + 32);
        r5.Store(block + 40);
        r6.Store(block + 48);
        r7.Store(block + 56);
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < i; j++)
                (block[i * 8 + j], block[j * 8 + i]) = (block[j * 8 + i], block[i * 8 + j]);
        r0 = Vector256.Load(block);
        r1 = Vector256.Load(block + 8);
        r2 = Vector256.Load(block + 16);
        r3 = Vector256.Load(block + 24);
        r4 = Vector256.Load(block + 32);
        r5 = Vector256.Load(block + 40);
        r6 = Vector256.Load(block + 48);
        r7 = Vector256.Load(block + 56);
    }

    /// <summary>
    /// libjpeg's range_limit table after the IDCT: the value is taken modulo 4 * 2^bits (RANGE_MASK) as a signed
    /// number, shifted up by the centre sample (the level shift) and clamped. Only damaged data reaches the wrap.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RangeLimit<TPrecision>(Vector256<int> value) where TPrecision : IDctPrecision
    {
        int wrap = 30 - TPrecision.Bits;
        Vector256<int> wrapped = Vector256.ShiftRightArithmetic(value << wrap, wrap);
        return Vector256.Min(Vector256.Max(wrapped + Vector256.Create(1 << (TPrecision.Bits - 1)), Vector256<int>.Zero),
            Vector256.Create((1 << TPrecision.Bits) - 1));
    }
}
