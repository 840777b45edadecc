namespace MedSearch.Dicom;

/// <summary>
/// One data element as read from the file. <see cref="Value"/> is a slice of the file's buffer (no copy), in the
/// dataset's byte order; the typed getters of <see cref="DicomDataset"/> interpret it.
/// </summary>
public sealed class DicomElement
{
    internal const uint UndefinedLength = 0xFFFFFFFF;

    internal DicomElement(DicomTag tag, DicomVR vr, ReadOnlyMemory<byte> value, uint declaredLength, long offset)
    {
        Tag = tag;
        VR = vr;
        Value = value;
        DeclaredLength = declaredLength;
        Offset = offset;
    }

    public DicomTag Tag { get; }

    /// <summary>The VR the file gave (explicit VR), or the dictionary's (implicit VR; UN for tags it does not know).</summary>
    public DicomVR VR { get; }

    /// <summary>The value bytes; for a sequence or encapsulated pixel data, the raw bytes of its items.</summary>
    public ReadOnlyMemory<byte> Value { get; }

    /// <summary>The length the header claimed; 0xFFFFFFFF for undefined length.</summary>
    public uint DeclaredLength { get; }

    /// <summary>Byte offset of the element's header in the buffer it was read from (the inflated one for deflated files).</summary>
    public long Offset { get; }

    /// <summary>The file ended inside this value: <see cref="Value"/> holds only what was there.</summary>
    public bool IsTruncated => DeclaredLength != UndefinedLength && DeclaredLength > (uint)Value.Length;

    /// <summary>Items of a sequence (SQ, or UN/unknown with undefined length); empty for other elements.</summary>
    public IReadOnlyList<DicomDataset> Items { get; internal init; } = [];

    /// <summary>The fragments of encapsulated pixel data (undefined-length OB/OW); null otherwise.</summary>
    public DicomFragments? Fragments { get; internal init; }

    public override string ToString() => $"{Tag} {VR} {(DeclaredLength == UndefinedLength ? "undefined" : DeclaredLength.ToString())}";
}

/// <summary>
/// Encapsulated pixel data (PS3.5 A.4): the Basic Offset Table item, then one item per fragment. Positions are
/// measured as the offset tables measure them: from the first byte of the first fragment's item tag.
/// </summary>
public sealed class DicomFragments
{
    internal DicomFragments(ReadOnlyMemory<byte> basicOffsetTable, IReadOnlyList<ReadOnlyMemory<byte>> fragments,
        IReadOnlyList<long> positions, bool isTruncated)
    {
        BasicOffsetTable = basicOffsetTable;
        Fragments = fragments;
        Positions = positions;
        IsTruncated = isTruncated;
    }

    /// <summary>The first item's value: 32-bit offsets of each frame's first fragment, or empty.</summary>
    public ReadOnlyMemory<byte> BasicOffsetTable { get; }

    public IReadOnlyList<ReadOnlyMemory<byte>> Fragments { get; }

    /// <summary>Where each fragment's item tag sits, relative to the first fragment's.</summary>
    public IReadOnlyList<long> Positions { get; }

    /// <summary>The file ended before the sequence delimiter (or inside the last fragment).</summary>
    public bool IsTruncated { get; }
}
