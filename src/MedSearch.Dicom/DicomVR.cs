namespace MedSearch.Dicom;

/// <summary>How an element's value is laid out, which decides how the typed getters read it.</summary>
public enum DicomValueKind
{
    /// <summary>Character string; multiple values separated by backslash (AE AS CS DA DS DT IS LO PN SH TM UC UI).</summary>
    String,
    /// <summary>Free text: one value, backslash is an ordinary character, leading spaces are significant (LT ST UT UR).</summary>
    Text,
    /// <summary>Fixed-size binary numbers in the transfer syntax's byte order (AT FD FL SL SS SV UL US UV, OD OF OL OV OW).</summary>
    Binary,
    /// <summary>Bytes with no byte order (OB, UN).</summary>
    Bytes,
    Sequence,
}

/// <summary>A value representation (PS3.5 6.2). One shared instance per VR: compare by reference.</summary>
public sealed class DicomVR
{
    private DicomVR(string code, bool longHeader, DicomValueKind kind, int unitSize, bool characterSetApplies = false)
    {
        Code = code;
        HasLongHeader = longHeader;
        Kind = kind;
        UnitSize = unitSize;
        CharacterSetApplies = characterSetApplies;
    }

    public string Code { get; }

    /// <summary>
    /// Explicit VR header form (PS3.5 7.1.2): true for VRs followed by two reserved bytes and a 32-bit length,
    /// false for those with a 16-bit length. Implicit VR always uses a 32-bit length.
    /// </summary>
    public bool HasLongHeader { get; }

    public DicomValueKind Kind { get; }

    /// <summary>Byte-swapping unit for big endian data: 2, 4 or 8 for binary numbers, 1 where bytes have no order.</summary>
    public int UnitSize { get; }

    /// <summary>Whether (0008,0005) Specific Character Set governs the bytes; the other string VRs are ASCII by definition.</summary>
    public bool CharacterSetApplies { get; }

    public override string ToString() => Code;

    public static readonly DicomVR AE = new("AE", false, DicomValueKind.String, 1);
    public static readonly DicomVR AS = new("AS", false, DicomValueKind.String, 1);
    public static readonly DicomVR AT = new("AT", false, DicomValueKind.Binary, 2);
    public static readonly DicomVR CS = new("CS", false, DicomValueKind.String, 1);
    public static readonly DicomVR DA = new("DA", false, DicomValueKind.String, 1);
    public static readonly DicomVR DS = new("DS", false, DicomValueKind.String, 1);
    public static readonly DicomVR DT = new("DT", false, DicomValueKind.String, 1);
    public static readonly DicomVR FD = new("FD", false, DicomValueKind.Binary, 8);
    public static readonly DicomVR FL = new("FL", false, DicomValueKind.Binary, 4);
    public static readonly DicomVR IS = new("IS", false, DicomValueKind.String, 1);
    public static readonly DicomVR LO = new("LO", false, DicomValueKind.String, 1, characterSetApplies: true);
    public static readonly DicomVR LT = new("LT", false, DicomValueKind.Text, 1, characterSetApplies: true);
    public static readonly DicomVR OB = new("OB", true, DicomValueKind.Bytes, 1);
    public static readonly DicomVR OD = new("OD", true, DicomValueKind.Binary, 8);
    public static readonly DicomVR OF = new("OF", true, DicomValueKind.Binary, 4);
    public static readonly DicomVR OL = new("OL", true, DicomValueKind.Binary, 4);
    public static readonly DicomVR OV = new("OV", true, DicomValueKind.Binary, 8);
    public static readonly DicomVR OW = new("OW", true, DicomValueKind.Binary, 2);
    public static readonly DicomVR PN = new("PN", false, DicomValueKind.String, 1, characterSetApplies: true);
    public static readonly DicomVR SH = new("SH", false, DicomValueKind.String, 1, characterSetApplies: true);
    public static readonly DicomVR SL = new("SL", false, DicomValueKind.Binary, 4);
    public static readonly DicomVR SQ = new("SQ", true, DicomValueKind.Sequence, 1);
    public static readonly DicomVR SS = new("SS", false, DicomValueKind.Binary, 2);
    public static readonly DicomVR ST = new("ST", false, DicomValueKind.Text, 1, characterSetApplies: true);
    public static readonly DicomVR SV = new("SV", true, DicomValueKind.Binary, 8);
    public static readonly DicomVR TM = new("TM", false, DicomValueKind.String, 1);
    public static readonly DicomVR UC = new("UC", true, DicomValueKind.String, 1, characterSetApplies: true);
    public static readonly DicomVR UI = new("UI", false, DicomValueKind.String, 1);
    public static readonly DicomVR UL = new("UL", false, DicomValueKind.Binary, 4);
    public static readonly DicomVR UN = new("UN", true, DicomValueKind.Bytes, 1);
    public static readonly DicomVR UR = new("UR", true, DicomValueKind.Text, 1);
    public static readonly DicomVR US = new("US", false, DicomValueKind.Binary, 2);
    public static readonly DicomVR UT = new("UT", true, DicomValueKind.Text, 1, characterSetApplies: true);
    public static readonly DicomVR UV = new("UV", true, DicomValueKind.Binary, 8);

    private static readonly DicomVR?[] ByCode = BuildTable();

    /// <summary>The VR spelled by two header bytes, or null when they spell none (garbage, or implicit VR data).</summary>
    public static DicomVR? Lookup(byte first, byte second)
    {
        int a = first - 'A', b = second - 'A';
        return (uint)a < 26 && (uint)b < 26 ? ByCode[a * 26 + b] : null;
    }

    /// <summary>The VR with this two-letter code, or null.</summary>
    public static DicomVR? Parse(string code) =>
        code.Length == 2 && code[0] < 128 && code[1] < 128 ? Lookup((byte)code[0], (byte)code[1]) : null;

    private static DicomVR?[] BuildTable()
    {
        var table = new DicomVR?[26 * 26];
        foreach (var vr in new[]
                 {
                     AE, AS, AT, CS, DA, DS, DT, FD, FL, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ, SS, ST, SV,
                     TM, UC, UI, UL, UN, UR, US, UT, UV,
                 })
            table[(vr.Code[0] - 'A') * 26 + vr.Code[1] - 'A'] = vr;
        return table;
    }
}
