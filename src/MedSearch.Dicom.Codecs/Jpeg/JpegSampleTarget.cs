using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MedSearch.Dicom.Codecs.Jpeg;

/// <summary>
/// Where one component's decoded 8x8 blocks go: a pinned, row-major array of <paramref name="width"/> x
/// <paramref name="height"/> samples of 1, 2 or 4 bytes (a grey output frame, or a <see cref="JpegPlanes"/> plane).
/// Samples wider than a byte are written as 16 bits, little-endian; the upper bytes of 4-byte samples must be clear.
/// </summary>
internal readonly unsafe struct JpegSampleTarget(byte* origin, int width, int height, int bytesPerSample)
{
    /// <summary>Whether a block at (x, y) has samples inside the component; partial MCUs pad it with blocks that do not.</summary>
    public bool Covers(int x, int y) => (uint)x < (uint)width && (uint)y < (uint)height;

    /// <summary>Writes the part of an 8x8 block of in-range samples, top left at (x, y), that lies inside the component.</summary>
    public void Store(short* block, int x, int y)
    {
        if (!Covers(x, y))
            return;
        int rows = Math.Min(8, height - y);
        int columns = Math.Min(8, width - x);
        for (int i = 0; i < rows; i++)
        {
            Vector128<short> row = Vector128.Load(block + i * 8);
            long at = (long)(y + i) * width + x;
            if (bytesPerSample == 1)
            {
                byte* target = origin + at;
                if (columns == 8)
                    Vector128.Narrow(row, row).AsByte().GetLower().Store(target);
                else
                    for (int j = 0; j < columns; j++) target[j] = (byte)block[i * 8 + j];
            }
            else
            {
                byte* target = origin + at * bytesPerSample;
                if (columns == 8 && bytesPerSample == 2)
                    row.AsUInt16().Store((ushort*)target);
                else
                    for (int j = 0; j < columns; j++) Unsafe.WriteUnaligned(target + j * bytesPerSample, (ushort)block[i * 8 + j]);
            }
        }
    }
}
