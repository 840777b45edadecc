using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using JpegLibrary;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// Writes the decoded 8x8 blocks of a one-component frame straight into the output frame, clamped to the sample
/// range: grey needs neither upsampling nor colour conversion, so it skips <see cref="JpegPlanes"/>' intermediate plane.
/// The frame must stay pinned while JpegLibrary decodes, and be cleared beforehand: blocks that a damaged stream
/// never delivers then read as zero.
/// </summary>
internal sealed unsafe class JpegGreyOutput(byte* frame, int width, int height, int precision, int bytesPerSample) : JpegBlockOutputWriter
{
    private readonly short _maxValue = (short)((1 << precision) - 1);

    public override void WriteBlock(ref short blockRef, int componentIndex, int x, int y)
    {
        // JpegLibrary also hands over the padding blocks of partial MCUs, right and below the image.
        if (componentIndex != 0 || (uint)x >= (uint)width || (uint)y >= (uint)height)
            return;
        int rows = Math.Min(8, height - y);
        int columns = Math.Min(8, width - x);
        Vector128<short> max = Vector128.Create(_maxValue);
        for (int i = 0; i < rows; i++)
        {
            Vector128<short> row = Vector128.Min(Vector128.Max(Vector128.LoadUnsafe(ref blockRef, (nuint)(i * 8)), Vector128<short>.Zero), max);
            long at = (long)(y + i) * width + x;
            if (bytesPerSample == 1)
            {
                byte* target = frame + at;
                if (columns == 8)
                    Vector128.Narrow(row, row).AsByte().GetLower().Store(target);
                else
                    for (int j = 0; j < columns; j++) target[j] = (byte)row.GetElement(j);
            }
            else
            {
                // BitsAllocated 16 or 32: samples of 12-bit precision at most, in the low 16 bits (the upper ones stay cleared).
                byte* target = frame + at * bytesPerSample;
                if (columns == 8 && bytesPerSample == 2)
                    row.AsUInt16().Store((ushort*)target);
                else
                    for (int j = 0; j < columns; j++) Unsafe.WriteUnaligned(target + j * bytesPerSample, (ushort)row.GetElement(j));
            }
        }
    }
}
