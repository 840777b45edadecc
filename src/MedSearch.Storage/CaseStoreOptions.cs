namespace MedSearch.Storage;

/// <summary>Memory and hash-index sizing of a <see cref="CaseStore"/>. Sizes are bytes unless stated.</summary>
public sealed record CaseStoreOptions
{
    /// <summary>
    /// In-memory part of the log: the most recent records live here, older ones are read from disk.
    /// FASTER's own default is 16 GiB, far more than a search node should pin, hence 256 MiB. Power of two.
    /// </summary>
    public long MemorySize { get; init; } = 256L << 20;

    /// <summary>Log page size; a record (one case) must fit in a page. Power of two, at most MemorySize / 2.</summary>
    public long PageSize { get; init; } = 4L << 20;

    /// <summary>
    /// Number of hash buckets (not bytes: FASTER's own setting is in bytes, 64 per bucket). A bucket holds 7
    /// entries before it chains into overflow buckets, so 2^18 buckets (16 MiB) serve about 1.8 M cases at
    /// full speed. Power of two.
    /// </summary>
    public long IndexSize { get; init; } = 1L << 18;

    /// <summary>
    /// FASTER's read cache keeps recently read disk-resident records in memory, using up to
    /// <see cref="MemorySize"/> more. Off by default: retrieval reads are spread over the whole collection,
    /// so it mostly costs memory.
    /// </summary>
    public bool ReadCacheEnabled { get; init; }

    internal void Validate()
    {
        RequirePowerOfTwo(MemorySize, nameof(MemorySize));
        RequirePowerOfTwo(PageSize, nameof(PageSize));
        RequirePowerOfTwo(IndexSize, nameof(IndexSize));
        if (PageSize < 512)
            throw new ArgumentOutOfRangeException(nameof(PageSize), PageSize, $"{nameof(PageSize)} must be at least 512 bytes, got {PageSize}");
        if (MemorySize < 2 * PageSize)
            throw new ArgumentOutOfRangeException(nameof(MemorySize), MemorySize,
                $"{nameof(MemorySize)} ({MemorySize}) must hold at least two pages of {PageSize} bytes");
    }

    private static void RequirePowerOfTwo(long value, string name)
    {
        // FASTER silently rounds these down; a caller asking for 300 MB should learn it gets 256.
        if (value <= 0 || (value & (value - 1)) != 0)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a positive power of two, got {value}");
    }
}
