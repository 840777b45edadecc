using System.Buffers.Binary;

namespace MedSearch.Dicom.Codecs.Tests;

/// <summary>
/// Deterministic test pixels: smooth gradients (so that lossy codecs behave as on real images) plus noise (so that
/// lossless codecs meet every difference category), stored as the decoders' output contract says.
/// </summary>
internal sealed record TestImage(FrameFormat Format, byte[] Pixels)
{
    public int Count => Format.Rows * Format.Columns * Format.SamplesPerPixel;
    public int Min => Format.Signed ? -(1 << (Format.BitsStored - 1)) : 0;
    public int Max => Format.Signed ? (1 << (Format.BitsStored - 1)) - 1 : (int)((1L << Format.BitsStored) - 1);

    /// <param name="extremes">
    /// Make the first row alternate between the range's ends and hold the exact half-range jumps, so that a 16-bit
    /// lossless coder must use the difference 32768 (SSSS = 16) and the values above 32767.
    /// </param>
    /// <param name="noise">Noise amplitude as a fraction of the range.</param>
    public static TestImage Create(int rows, int columns, int samples, int bitsAllocated, int bitsStored, bool signed,
        bool extremes = false, double noise = 1.0 / 64, string? photometric = null, int seed = 1)
    {
        var format = new FrameFormat(rows, columns, samples, bitsAllocated, bitsStored, signed,
            photometric ?? (samples == 3 ? "RGB" : "MONOCHROME2"));
        var image = new TestImage(format, new byte[format.FrameBytes]);
        long range = (long)image.Max - image.Min;
        uint state = (uint)seed * 2654435761u + 12345;
        for (int y = 0; y < rows; y++)
        {
            for (int x = 0; x < columns; x++)
            {
                for (int c = 0; c < samples; c++)
                {
                    // Different slopes and a slow ripple per component so that colour planes are not copies.
                    double t = (x * (c + 1.0) / columns + y * (3.0 - c) / rows) / 4.0
                        + 0.15 * Math.Sin((x + 2 * y) * (0.05 + 0.02 * c));
                    state = state * 1664525u + 1013904223u;
                    double jitter = ((state >> 8) / (double)(1 << 24) - 0.5) * 2 * noise;
                    double fraction = Math.Clamp(0.1 + 0.8 * (t - Math.Floor(t)) + jitter, 0, 1);
                    long value = image.Min + (long)Math.Round(fraction * range);
                    if (extremes && y == 0)
                        value = (x % 4) switch
                        {
                            0 => image.Min,
                            1 => image.Max,
                            2 => image.Min + (range + 1) / 2,
                            _ => image.Min,
                        };
                    image.Set((y * columns + x) * samples + c, (int)value);
                }
            }
        }
        return image;
    }

    public int Get(int index) => Get(Pixels, Format, index);

    public static int Get(ReadOnlySpan<byte> pixels, FrameFormat format, int index) => format.BytesPerSample switch
    {
        1 => format.Signed ? (sbyte)pixels[index] : pixels[index],
        2 => format.Signed
            ? BinaryPrimitives.ReadInt16LittleEndian(pixels[(2 * index)..])
            : BinaryPrimitives.ReadUInt16LittleEndian(pixels[(2 * index)..]),
        _ => BinaryPrimitives.ReadInt32LittleEndian(pixels[(4 * index)..]),
    };

    private void Set(int index, int value)
    {
        switch (Format.BytesPerSample)
        {
            case 1: Pixels[index] = (byte)value; break;
            case 2: BinaryPrimitives.WriteInt16LittleEndian(Pixels.AsSpan(2 * index), (short)value); break;
            default: BinaryPrimitives.WriteInt32LittleEndian(Pixels.AsSpan(4 * index), value); break;
        }
    }

    public TestImage Map(Func<int, int> f)
    {
        var copy = this with { Pixels = (byte[])Pixels.Clone() };
        for (int i = 0; i < Count; i++)
            copy.Set(i, f(Get(i)));
        return copy;
    }
}
