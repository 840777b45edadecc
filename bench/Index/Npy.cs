using System.Runtime.InteropServices;
using System.Text;

namespace MedSearch.Bench.Index;

/// <summary>
/// NumPy's .npy format (version 1.0, C order, little-endian), so that the hnswlib side reads exactly the
/// vectors and ground truth this side made.
/// </summary>
internal static class Npy
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static void Write<T>(string path, ReadOnlySpan<T> data, int rows, int columns) where T : unmanaged
    {
        string dtype = typeof(T) == typeof(float) ? "<f4" : typeof(T) == typeof(long) ? "<i8"
            : throw new NotSupportedException($"no .npy dtype for {typeof(T)}");
        if ((long)rows * columns != data.Length)
            throw new ArgumentException($"{data.Length} values are not {rows} x {columns}");
        var header = $"{{'descr': '{dtype}', 'fortran_order': False, 'shape': ({rows}, {columns}), }}";
        // The magic, version and length take 10 bytes; the header pads with spaces to a multiple of 64, ending in \n.
        int padded = (10 + header.Length + 1 + 63) / 64 * 64 - 10;
        header = header.PadRight(padded - 1) + "\n";
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        stream.Write(Magic);
        stream.Write([1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        stream.Write(MemoryMarshal.AsBytes(data));
    }

    public static T[] Read<T>(string path, out int rows, out int columns) where T : unmanaged
    {
        var bytes = File.ReadAllBytes(path);
        if (!bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new InvalidDataException($"{path} is not a .npy file");
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        var header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        var shape = header[(header.IndexOf("'shape': (", StringComparison.Ordinal) + 10)..];
        var dims = shape[..shape.IndexOf(')')].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        rows = int.Parse(dims[0]);
        columns = dims.Length > 1 ? int.Parse(dims[1]) : 1;
        return MemoryMarshal.Cast<byte, T>(bytes.AsSpan(10 + headerLength)).ToArray();
    }
}
