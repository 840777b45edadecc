namespace MedSearch.Dicom;

/// <summary>
/// Bounds on what one file may make the reader do. Files come from outside, so every quantity a file claims is
/// checked against one of these (or against the bytes actually present) before anything is allocated or looped on.
/// </summary>
public sealed record DicomReadLimits
{
    public static DicomReadLimits Default { get; } = new();

    /// <summary>Sequences nested deeper than this are refused: real data rarely nests beyond 5 levels, and parsing recurses per level.</summary>
    public int MaxSequenceDepth { get; init; } = 32;

    /// <summary>Elements, items and fragments in the whole file, nested ones included.</summary>
    public int MaxElements { get; init; } = 1_000_000;

    /// <summary>Largest file <see cref="DicomFile.Open(string, DicomReadLimits?)"/> will read into memory.</summary>
    public long MaxFileBytes { get; init; } = int.MaxValue;

    /// <summary>Largest dataset a deflated transfer syntax may inflate to: bounds decompression bombs.</summary>
    public long MaxInflatedBytes { get; init; } = 1L << 30;

    /// <summary>Rows × Columns × Frames × Samples per Pixel an image may claim.</summary>
    public long MaxPixelSamples { get; init; } = 1L << 30;

    /// <summary>Decoded size of all frames together (at whole bytes per sample) an image may claim.</summary>
    public long MaxPixelBytes { get; init; } = 2L << 30;
}
