using System.IO.Compression;
using System.Runtime.InteropServices;

namespace MedSearch.Dicom;

/// <summary>
/// A DICOM Part-10 file (PS3.10 7): optional 128-byte preamble and "DICM", the file meta group (always explicit VR
/// little endian), then the dataset in the transfer syntax the meta group names. Files without the preamble are
/// accepted when they start with a group 0002 or 0008 element (pydicom's force=True corpus has such files);
/// anything else is not DICOM.
/// </summary>
public sealed class DicomFile
{
    private static ReadOnlySpan<byte> Prefix => "DICM"u8;

    private DicomFile(string source, bool hasPreamble, DicomDataset fileMetaInformation, DicomDataset dataset,
        string? declaredTransferSyntaxUid, string? truncation, DicomReadLimits limits)
    {
        Source = source;
        HasPreamble = hasPreamble;
        FileMetaInformation = fileMetaInformation;
        Dataset = dataset;
        DeclaredTransferSyntaxUid = declaredTransferSyntaxUid;
        Truncation = truncation;
        Limits = limits;
    }

    public string Source { get; }

    public bool HasPreamble { get; }

    /// <summary>Group 0002; empty when the file has none.</summary>
    public DicomDataset FileMetaInformation { get; }

    public DicomDataset Dataset { get; }

    /// <summary>The syntax the dataset was read with: the declared one, or for files that declare none, the one its bytes show.</summary>
    public TransferSyntax TransferSyntax => Dataset.TransferSyntax;

    /// <summary>(0002,0010) as the file states it; null when absent.</summary>
    public string? DeclaredTransferSyntaxUid { get; }

    /// <summary>Where the file ended before its last element, item or sequence did; null for a complete file.</summary>
    public string? Truncation { get; }

    public DicomReadLimits Limits { get; }

    /// <summary>The pixel data of the top-level dataset, checked against <see cref="Limits"/>.</summary>
    public DicomPixelData GetPixelData() => DicomPixelData.From(Dataset, Limits);

    public static DicomFile Open(string path, DicomReadLimits? limits = null)
    {
        limits ??= DicomReadLimits.Default;
        long length = new FileInfo(path).Length;
        if (length > limits.MaxFileBytes)
            throw new DicomException(path, $"file holds {length} bytes, more than the {limits.MaxFileBytes} allowed");
        return Open(File.ReadAllBytes(path), path, limits);
    }

    /// <param name="bytes">The whole file; elements keep slices of it, so it must not change while they are used.</param>
    /// <param name="source">Names the bytes in exceptions (usually the path).</param>
    public static DicomFile Open(ReadOnlyMemory<byte> bytes, string source, DicomReadLimits? limits = null)
    {
        limits ??= DicomReadLimits.Default;
        var span = bytes.Span;
        if (!HasSignature(span))
            throw new DicomException(source,
                "not a DICOM file: no \"DICM\" prefix at offset 128, and the data does not start with a group 0002 or 0008 element");
        bool hasPreamble = HasPrefix(span);
        int position = hasPreamble ? 132 : 0;
        bool bigEndianGroup8 = !hasPreamble && StartsWithBigEndianGroup8(span);

        var meta = new DicomDataset(source, TransferSyntax.ExplicitVRLittleEndian, isBigEndian: false, parent: null);
        var metaParser = new DicomParser(bytes, source, TransferSyntax.ExplicitVRLittleEndian, limits);
        position = metaParser.ReadDataset(meta, position, new DicomParser.Syntax(Explicit: true, BigEndian: false), metaGroupOnly: true);
        if (metaParser.Truncation is not null)
            throw new DicomException(source, $"the file ends inside its file meta group: {metaParser.Truncation}");
        // PS3.10 7.1: the prefix promises a meta group; without one, what follows is anyone's guess.
        if (hasPreamble && meta.Count == 0)
            throw new DicomException(source, "the \"DICM\" prefix at offset 128 is not followed by a file meta group (0002,xxxx)");

        string? declared = meta.GetString(DicomTag.TransferSyntaxUid);
        var transferSyntax = declared is not null
            ? TransferSyntax.Lookup(declared)
            : bigEndianGroup8
                ? TransferSyntax.ExplicitVRBigEndian
                : GuessLittleEndian(span, position);

        var data = bytes[position..];
        if (transferSyntax.IsDeflated) data = Inflate(data, source, limits);
        var dataset = new DicomDataset(source, transferSyntax, transferSyntax.IsBigEndian, parent: null);
        var parser = new DicomParser(data, source, transferSyntax, limits);
        parser.ReadDataset(dataset, 0, new DicomParser.Syntax(transferSyntax.IsExplicitVR, transferSyntax.IsBigEndian), metaGroupOnly: false);
        return new DicomFile(source, hasPreamble, meta, dataset, declared, parser.Truncation, limits);
    }

    /// <summary>
    /// Whether a file starting with <paramref name="bytes"/> (its first 132 bytes suffice) passes the check Open makes
    /// first: "DICM" at offset 128, or else a group 0002 or 0008 element (little endian, or 0008 big endian).
    /// </summary>
    public static bool HasSignature(ReadOnlySpan<byte> bytes) =>
        HasPrefix(bytes)
        || bytes.Length >= 8 && DicomParser.ReadUInt16(bytes, 0, bigEndian: false) is 0x0002 or 0x0008
        || StartsWithBigEndianGroup8(bytes);

    private static bool HasPrefix(ReadOnlySpan<byte> bytes) => bytes.Length >= 132 && bytes.Slice(128, 4).SequenceEqual(Prefix);

    private static bool StartsWithBigEndianGroup8(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 8 && DicomParser.ReadUInt16(bytes, 0, bigEndian: true) == 0x0008;

    /// <summary>No transfer syntax stated: pydicom assumes implicit VR little endian unless the first element carries a VR.</summary>
    private static TransferSyntax GuessLittleEndian(ReadOnlySpan<byte> span, int position) =>
        span.Length - position >= 6 && DicomParser.IsVRLetters(span[position + 4], span[position + 5])
            ? TransferSyntax.ExplicitVRLittleEndian
            : TransferSyntax.ImplicitVRLittleEndian;

    /// <summary>Deflated Explicit VR Little Endian: everything after the meta group is one raw deflate stream (PS3.5 A.5).</summary>
    private static ReadOnlyMemory<byte> Inflate(ReadOnlyMemory<byte> compressed, string source, DicomReadLimits limits)
    {
        using var input = MemoryMarshal.TryGetArray(compressed, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(compressed.ToArray(), writable: false);
        using var inflater = new DeflateStream(input, CompressionMode.Decompress);
        long cap = Math.Min(limits.MaxInflatedBytes, Array.MaxLength);
        var output = new byte[Math.Min(Math.Max(4096L, compressed.Length * 4L), cap)];
        int total = 0;
        Span<byte> probe = stackalloc byte[1];
        try
        {
            while (true)
            {
                if (total == output.Length)
                {
                    if (total >= cap)
                    {
                        if (inflater.Read(probe) == 0) break;
                        throw new DicomException(source, $"deflated dataset inflates to more than {cap} bytes");
                    }
                    Array.Resize(ref output, (int)Math.Min(total * 2L, cap));
                }
                int read = inflater.Read(output, total, output.Length - total);
                if (read == 0) break;
                total += read;
            }
        }
        catch (InvalidDataException e)
        {
            throw new DicomException(source, $"deflated dataset is corrupt after {total} inflated bytes: {e.Message}", e);
        }
        return output.AsMemory(0, total);
    }
}
