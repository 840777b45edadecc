using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;

namespace MedSearch.Index;

/// <summary>
/// On-disk container of a saved index: a 128-byte header, then the payload: USearch's own serialization (the
/// "native part") followed by whatever the index keeps beside it. USearch checks its header but not its graph,
/// and a damaged graph can crash the process on load, so the header carries a SHA-256 of the payload and the
/// payload's length, and a file is only handed to USearch once both match. Files are memory-mapped on both sides, so a multi-gigabyte index is never copied
/// through managed memory.
/// </summary>
/// <remarks>
/// Header, little-endian: magic (8) | container version u32 | dimensions u32 | payload length u64 |
/// SHA-256 of payload (32) | native part length u64 | ef construction of the graph u32 | zeros. The header's size
/// keeps the payload 64-byte aligned, as a memory-mapped USearch view would need. Version 1 had no native part length
/// (the payload was USearch's alone); version 2's payload ended after the f32 vectors, without the unreachable keys;
/// version 3's header was 64 bytes, without the ef construction (USearch does not keep it, and the search expansion
/// a graph needs for a given recall depends on it).
/// </remarks>
internal static unsafe class IndexFile
{
    public const int HeaderBytes = 128;
    private const uint Version = 4;

    // The CR LF catches files mangled by text-mode copies, as in PNG's signature.
    private static ReadOnlySpan<byte> Magic => "MSHNSW\r\n"u8;

    // IncrementalHash takes spans, which are at most 2 GiB long.
    private const int HashChunkBytes = 1 << 30;

    public delegate void PayloadWriter(byte* destination, long length);

    public delegate void PayloadReader(byte* payload, long length, long nativeLength);

    /// <summary>
    /// Creates <paramref name="path"/> (replacing it) with a payload of the given length filled by
    /// <paramref name="write"/>, whose first <paramref name="nativeLength"/> bytes are USearch's, a graph built with
    /// <paramref name="expansionAdd"/>; flushed to disk.
    /// </summary>
    public static void Write(string path, int dimensions, int expansionAdd, long nativeLength, long payloadLength, PayloadWriter write)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        stream.SetLength(HeaderBytes + payloadLength);
        using (var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: true))
        using (var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite))
        {
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            try
            {
                start += view.PointerOffset;
                write(start + HeaderBytes, payloadLength);
                var header = new Span<byte>(start, HeaderBytes);
                header.Clear();
                Magic.CopyTo(header);
                BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
                BinaryPrimitives.WriteUInt32LittleEndian(header[12..], (uint)dimensions);
                BinaryPrimitives.WriteInt64LittleEndian(header[16..], payloadLength);
                Hash(start + HeaderBytes, payloadLength, header.Slice(24, SHA256.HashSizeInBytes));
                BinaryPrimitives.WriteInt64LittleEndian(header[56..], nativeLength);
                BinaryPrimitives.WriteUInt32LittleEndian(header[64..], (uint)expansionAdd);
            }
            finally
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
            view.Flush();
        }
        stream.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Checks <paramref name="path"/> and hands its verified payload to <paramref name="read"/>, which must not
    /// keep the pointer: the mapping is closed when it returns.
    /// </summary>
    /// <exception cref="IndexFileException">
    /// The file is missing, unreadable, truncated, corrupt, has other dimensions or a graph built with an ef construction
    /// below <paramref name="expansionAdd"/> (the search expansion chosen for that would not reach its recall on it).
    /// </exception>
    public static void Read(string path, int dimensions, int expansionAdd, PayloadReader read)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IndexFileException($"index file {path} cannot be opened: {e.Message}", e);
        }
        using (stream)
        {
            long length = stream.Length;
            if (length < HeaderBytes)
                throw new IndexFileException($"index file {path} is truncated: {length} bytes, less than its {HeaderBytes}-byte header");
            using var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
            using var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            try
            {
                start += view.PointerOffset;
                var header = new ReadOnlySpan<byte>(start, HeaderBytes);
                if (!header[..Magic.Length].SequenceEqual(Magic))
                    throw new IndexFileException($"index file {path} is not a MedSearch HNSW index (no header)");
                uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
                if (version != Version)
                    throw new IndexFileException($"index file {path} has container version {version}; this build reads version {Version}");
                uint stored = BinaryPrimitives.ReadUInt32LittleEndian(header[12..]);
                if (stored != dimensions)
                    throw new IndexFileException($"index file {path} holds {stored}-dimensional vectors, expected {dimensions}");
                // Before the checksum: a multi-gigabyte payload is not hashed only to be refused.
                uint builtWith = BinaryPrimitives.ReadUInt32LittleEndian(header[64..]);
                if (builtWith is 0 or > int.MaxValue)
                    throw new IndexFileException($"index file {path} is corrupt: its header says the graph was built with ef construction {builtWith}");
                if (builtWith < expansionAdd)
                    throw new IndexFileException(
                        $"index file {path} holds a graph built with ef construction {builtWith}; this index builds with {expansionAdd}, " +
                        "and its search expansion is tuned for a graph built so");
                long payloadLength = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
                if (payloadLength != length - HeaderBytes)
                    throw new IndexFileException(
                        $"index file {path} is truncated or padded: its header promises {payloadLength} bytes of index, the file holds {length - HeaderBytes}");
                Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
                Hash(start + HeaderBytes, payloadLength, digest);
                if (!digest.SequenceEqual(header.Slice(24, SHA256.HashSizeInBytes)))
                    throw new IndexFileException($"index file {path} is corrupt: its contents do not match the checksum in its header");
                long nativeLength = BinaryPrimitives.ReadInt64LittleEndian(header[56..]);
                if (nativeLength <= 0 || nativeLength > payloadLength)
                    throw new IndexFileException($"index file {path} is corrupt: its header puts {nativeLength} bytes of USearch graph in a {payloadLength}-byte payload");
                read(start + HeaderBytes, payloadLength, nativeLength);
            }
            finally
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
        }
    }

    private static void Hash(byte* data, long length, Span<byte> destination)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long offset = 0; offset < length; offset += HashChunkBytes)
            hash.AppendData(new ReadOnlySpan<byte>(data + offset, (int)Math.Min(HashChunkBytes, length - offset)));
        hash.GetHashAndReset(destination);
    }
}
