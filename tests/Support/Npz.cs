using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace MedSearch.Tests.Support;

/// <summary>An array read from a NumPy .npy member of an .npz archive (uint8 and integer labels only: what MedMNIST uses).</summary>
public sealed record NpyArray(int[] Shape, long[] Values)
{
    public int Count => Shape[0];
    public int ItemSize => Shape.Skip(1).Aggregate(1, (a, b) => a * b);
}

public static partial class Npz
{
    public static NpyArray Read(string npzPath, string name)
    {
        using var zip = ZipFile.OpenRead(npzPath);
        var entry = zip.GetEntry(name + ".npy") ?? throw new InvalidDataException($"{npzPath} has no array {name}");
        using var stream = entry.Open();
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return Parse(memory.ToArray(), $"{npzPath}:{name}");
    }

    private static NpyArray Parse(byte[] bytes, string name)
    {
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{name} is not a .npy array");
        int major = bytes[6];
        int headerLength = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int dataStart = (major == 1 ? 10 : 12) + headerLength;
        var header = Encoding.ASCII.GetString(bytes, major == 1 ? 10 : 12, headerLength);
        var descr = DescrPattern().Match(header).Groups[1].Value;
        if (header.Contains("'fortran_order': True")) throw new InvalidDataException($"{name}: Fortran order not supported");
        var shape = ShapePattern().Match(header).Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var values = new long[count];
        var data = bytes.AsSpan(dataStart);
        for (long i = 0; i < count; i++)
        {
            values[i] = descr switch
            {
                "|u1" => data[(int)i],
                "<i8" => BitConverter.ToInt64(data.Slice((int)(i * 8), 8)),
                "<u8" => (long)BitConverter.ToUInt64(data.Slice((int)(i * 8), 8)),
                "<i4" => BitConverter.ToInt32(data.Slice((int)(i * 4), 4)),
                _ => throw new InvalidDataException($"{name}: dtype {descr} not supported"),
            };
        }
        return new NpyArray(shape, values);
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
