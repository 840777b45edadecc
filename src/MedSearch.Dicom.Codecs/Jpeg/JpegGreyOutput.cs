using System.Runtime.Intrinsics;
using JpegLibrary;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// Writes JpegLibrary's decoded 8x8 blocks of a one-component (progressive) frame straight into the output frame,
/// clamped to the sample range: grey needs neither upsampling nor colour conversion, so it skips
/// <see cref="JpegPlanes"/>' intermediate plane. The frame must stay pinned while JpegLibrary decodes, and be cleared
/// beforehand: blocks that a damaged stream never delivers then read as zero.
/// </summary>
internal sealed unsafe class JpegGreyOutput(JpegSampleTarget frame, int precision) : JpegBlockOutputWriter
{
    private readonly short _maxValue = (short)((1 << precision) - 1);

    public override void WriteBlock(ref short blockRef, int componentIndex, int x, int y)
    {
        // JpegLibrary also hands over the padding blocks of partial MCUs, right and below the image.
        if (componentIndex != 0 || !frame.Covers(x, y))
            return;
        short* clamped = stackalloc short[64];
        Vector128<short> max = Vector128.Create(_maxValue);
        for (int i = 0; i < 64; i += 8)
            Vector128.Min(Vector128.Max(Vector128.LoadUnsafe(ref blockRef, (nuint)i), Vector128<short>.Zero), max).Store(clamped + i);
        frame.Store(clamped, x, y);
    }
}
