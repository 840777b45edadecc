using System.Buffers.Binary;
using System.Collections;
using System.Globalization;
using System.Text;

namespace MedSearch.Dicom;

/// <summary>
/// Elements in file order, looked up by tag, with typed getters. Getters return null when the element is absent
/// or empty and throw <see cref="DicomException"/> when its value is malformed or truncated, naming the tag.
/// A sequence item is a nested dataset; it inherits its parent's character set unless it declares its own.
/// </summary>
public sealed class DicomDataset : IReadOnlyList<DicomElement>
{
    // Below this size a linear scan beats hashing; most sequence items hold a handful of elements.
    private const int IndexThreshold = 12;

    private readonly List<DicomElement> _elements = [];
    private Dictionary<DicomTag, DicomElement>? _index;
    private Encoding? _encoding;

    internal DicomDataset(string source, TransferSyntax transferSyntax, bool isBigEndian, DicomDataset? parent)
    {
        Source = source;
        TransferSyntax = transferSyntax;
        IsBigEndian = isBigEndian;
        Parent = parent;
    }

    /// <summary>The file this dataset came from, for messages.</summary>
    public string Source { get; }

    /// <summary>The syntax the dataset was read with (explicit VR little endian for the file meta group).</summary>
    public TransferSyntax TransferSyntax { get; }

    /// <summary>Byte order of binary values in <see cref="DicomElement.Value"/>.</summary>
    public bool IsBigEndian { get; }

    /// <summary>The dataset holding the sequence this item belongs to; null at the top.</summary>
    public DicomDataset? Parent { get; }

    public int Count => _elements.Count;

    public DicomElement this[int index] => _elements[index];

    public IEnumerator<DicomElement> GetEnumerator() => _elements.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    internal void Add(DicomElement element)
    {
        _elements.Add(element);
        // A repeated tag replaces the earlier one in lookups, as pydicom does, so both read the same value.
        if (_index is not null) _index[element.Tag] = element;
    }

    public bool Contains(DicomTag tag) => Find(tag) is not null;

    /// <summary>The element with this tag, or null.</summary>
    public DicomElement? Find(DicomTag tag)
    {
        if (_elements.Count <= IndexThreshold)
        {
            for (int i = _elements.Count - 1; i >= 0; i--)
                if (_elements[i].Tag == tag) return _elements[i];
            return null;
        }
        var index = _index;
        if (index is null)
        {
            // Built whole before it is published, so that concurrent readers never see half an index.
            index = new Dictionary<DicomTag, DicomElement>(_elements.Count);
            foreach (var element in _elements) index[element.Tag] = element;
            _index = index;
        }
        return index.GetValueOrDefault(tag);
    }

    /// <summary>The first value of a string element, padding trimmed; null when absent or empty.</summary>
    public string? GetString(DicomTag tag)
    {
        var element = Find(tag);
        if (element is null) return null;
        var vr = StringVR(element);
        var text = Decode(element, vr);
        if (vr.Kind == DicomValueKind.Text) return NullIfEmpty(TrimText(text));
        int separator = text.IndexOf('\\');
        return NullIfEmpty(TrimValue(separator < 0 ? text : text[..separator]));
    }

    /// <summary>All values of a string element, each trimmed; empty when absent.</summary>
    public string[] GetStrings(DicomTag tag)
    {
        var element = Find(tag);
        if (element is null || element.Value.IsEmpty) return [];
        var vr = StringVR(element);
        var text = Decode(element, vr);
        if (vr.Kind == DicomValueKind.Text) return [TrimText(text)];
        var values = text.Split('\\');
        for (int i = 0; i < values.Length; i++) values[i] = TrimValue(values[i]);
        return values;
    }

    /// <summary>First value of a US, SS, UL, SL or IS element.</summary>
    public int? GetInt(DicomTag tag)
    {
        var element = Find(tag);
        if (element is null || element.Value.IsEmpty) return null;
        var vr = EffectiveVR(element);
        if (vr == DicomVR.IS)
        {
            var text = FirstStringValue(element, vr);
            if (text.Length == 0) return null;
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int parsed))
                throw Malformed(element, vr, $"'{text}' is not an integer");
            return parsed;
        }
        var bytes = BinaryValue(element, vr, vr == DicomVR.US || vr == DicomVR.SS ? 2 : 4);
        if (vr == DicomVR.US) return ReadUInt16(bytes);
        if (vr == DicomVR.SS) return (short)ReadUInt16(bytes);
        if (vr == DicomVR.SL) return (int)ReadUInt32(bytes);
        if (vr == DicomVR.UL)
        {
            uint value = ReadUInt32(bytes);
            if (value > int.MaxValue) throw Malformed(element, vr, $"{value} does not fit a 32-bit signed integer");
            return (int)value;
        }
        throw WrongVR(element, vr, "an integer");
    }

    /// <summary>First value of a US element (the VR of Rows, Columns, Bits Allocated and the like).</summary>
    public ushort? GetUInt16(DicomTag tag)
    {
        var element = Find(tag);
        if (element is null || element.Value.IsEmpty) return null;
        var vr = EffectiveVR(element);
        if (vr != DicomVR.US) throw WrongVR(element, vr, "an unsigned 16-bit integer");
        return ReadUInt16(BinaryValue(element, vr, 2));
    }

    /// <summary>
    /// Every 16-bit word of a US, SS, OW (or OB with an even length) element, as stored bits: lookup-table
    /// descriptors are "US or SS" and table data "OW" depending on who wrote the file, and readers interpret them
    /// by the table's own rules, not by the VR.
    /// </summary>
    public ushort[] GetUInt16s(DicomTag tag)
    {
        var element = Find(tag);
        if (element is null || element.Value.IsEmpty) return [];
        var vr = EffectiveVR(element);
        if (vr != DicomVR.US && vr != DicomVR.SS && vr != DicomVR.OW && vr != DicomVR.OB)
            throw WrongVR(element, vr, "16-bit words");
        var bytes = BinaryValue(element, vr, 2);
        var words = new ushort[bytes.Length / 2];
        for (int i = 0; i < words.Length; i++) words[i] = ReadUInt16(bytes.Slice(i * 2, 2));
        return words;
    }

    /// <summary>First value of a DS, FD, FL or IS element.</summary>
    public double? GetDouble(DicomTag tag)
    {
        var values = GetDoubles(tag, firstOnly: true);
        return values.Length == 0 ? null : values[0];
    }

    /// <summary>All values of a DS, FD, FL or IS element; empty when absent.</summary>
    public double[] GetDoubles(DicomTag tag) => GetDoubles(tag, firstOnly: false);

    /// <summary>The items of a sequence; empty when absent.</summary>
    public IReadOnlyList<DicomDataset> GetSequence(DicomTag tag)
    {
        var element = Find(tag);
        if (element is null) return [];
        if (element.Items.Count == 0 && !element.Value.IsEmpty && element.VR != DicomVR.SQ)
            throw WrongVR(element, element.VR, "a sequence");
        return element.Items;
    }

    private double[] GetDoubles(DicomTag tag, bool firstOnly)
    {
        var element = Find(tag);
        if (element is null || element.Value.IsEmpty) return [];
        var vr = EffectiveVR(element);
        if (vr == DicomVR.DS || vr == DicomVR.IS)
        {
            if (firstOnly)
            {
                var first = FirstStringValue(element, vr);
                return first.Length == 0 ? [] : [ParseDecimal(element, vr, first)];
            }
            var texts = GetStrings(tag);
            var result = new double[texts.Length];
            for (int i = 0; i < texts.Length; i++) result[i] = ParseDecimal(element, vr, texts[i]);
            return result;
        }
        int size = vr == DicomVR.FD ? 8 : vr == DicomVR.FL ? 4 : throw WrongVR(element, vr, "a decimal number");
        var bytes = BinaryValue(element, vr, size);
        int count = firstOnly ? 1 : bytes.Length / size;
        var values = new double[count];
        for (int i = 0; i < count; i++)
        {
            var unit = bytes.Slice(i * size, size);
            values[i] = size == 8
                ? BitConverter.UInt64BitsToDouble(IsBigEndian ? BinaryPrimitives.ReadUInt64BigEndian(unit) : BinaryPrimitives.ReadUInt64LittleEndian(unit))
                : BitConverter.UInt32BitsToSingle(ReadUInt32(unit));
        }
        return values;
    }

    private double ParseDecimal(DicomElement element, DicomVR vr, string text)
    {
        // DS is a decimal string: NaN and Infinity are not valid spellings, however .NET would parse them.
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
            throw Malformed(element, vr, $"'{text}' is not a decimal number");
        return value;
    }

    /// <summary>The character set for free-text VRs, from this item's (0008,0005) or the nearest ancestor's.</summary>
    internal Encoding CharacterSet => _encoding ??= ResolveCharacterSet();

    private Encoding ResolveCharacterSet()
    {
        var element = Find(DicomTag.SpecificCharacterSet);
        if (element is null) return Parent?.CharacterSet ?? Encoding.Latin1;
        // Only UTF-8 needs its own decoder for our metadata. ASCII (the default repertoire) and ISO_IR 100 decode
        // as Latin-1, and so does everything else: wrong accents beat a failed ingest, and Latin-1 never throws.
        var text = Encoding.Latin1.GetString(element.Value.Span);
        foreach (var term in text.Split('\\'))
            if (TrimValue(term) == "ISO_IR 192") return Encoding.UTF8;
        return Encoding.Latin1;
    }

    private string Decode(DicomElement element, DicomVR vr)
    {
        if (element.IsTruncated) throw Truncated(element);
        var encoding = vr.CharacterSetApplies ? CharacterSet : Encoding.Latin1;
        return encoding.GetString(element.Value.Span);
    }

    private string FirstStringValue(DicomElement element, DicomVR vr)
    {
        var text = Decode(element, vr);
        int separator = text.IndexOf('\\');
        return TrimValue(separator < 0 ? text : text[..separator]);
    }

    private DicomVR StringVR(DicomElement element)
    {
        var vr = EffectiveVR(element);
        // Unknown tags (UN) are most often text in practice: decode them as strings rather than refuse.
        if (vr.Kind is DicomValueKind.String or DicomValueKind.Text || vr == DicomVR.UN) return vr;
        throw WrongVR(element, vr, "a string");
    }

    private ReadOnlySpan<byte> BinaryValue(DicomElement element, DicomVR vr, int size)
    {
        if (element.IsTruncated) throw Truncated(element);
        var bytes = element.Value.Span;
        if (bytes.Length < size) throw Malformed(element, vr, $"value has {bytes.Length} bytes, fewer than one {size}-byte number");
        return bytes;
    }

    /// <summary>The element's VR, or for UN (implicit VR, or explicit UN) the dictionary's where it knows the tag.</summary>
    private static DicomVR EffectiveVR(DicomElement element) =>
        element.VR == DicomVR.UN ? DicomDictionary.Lookup(element.Tag) : element.VR;

    private ushort ReadUInt16(ReadOnlySpan<byte> bytes) =>
        IsBigEndian ? BinaryPrimitives.ReadUInt16BigEndian(bytes) : BinaryPrimitives.ReadUInt16LittleEndian(bytes);

    private uint ReadUInt32(ReadOnlySpan<byte> bytes) =>
        IsBigEndian ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt32LittleEndian(bytes);

    private static string? NullIfEmpty(string text) => text.Length == 0 ? null : text;

    private static string TrimValue(string text) => text.Trim(' ', '\0');

    private static string TrimText(string text) => text.TrimEnd(' ', '\0');

    private DicomException Truncated(DicomElement element) =>
        new(Source, $"element {element.Tag} claims {element.DeclaredLength} bytes but the file ends after {element.Value.Length}");

    private DicomException Malformed(DicomElement element, DicomVR vr, string why) =>
        new(Source, $"element {element.Tag} ({vr}): {why}");

    private DicomException WrongVR(DicomElement element, DicomVR vr, string wanted) =>
        new(Source, $"element {element.Tag} has VR {vr}, which does not hold {wanted}");
}
