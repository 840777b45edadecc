using System.Collections.Frozen;

namespace MedSearch.Dicom;

/// <summary>
/// VRs for implicit VR data (PS3.6): only the tags this reader interprets, plus sequences it must descend into.
/// Tags not listed read as UN, which keeps their bytes; the full dictionary would be thousands of entries that
/// nothing here uses.
/// </summary>
internal static class DicomDictionary
{
    private static readonly FrozenDictionary<uint, DicomVR> Entries = new Dictionary<uint, DicomVR>
    {
        [0x00020000] = DicomVR.UL, [0x00020001] = DicomVR.OB, [0x00020002] = DicomVR.UI, [0x00020003] = DicomVR.UI,
        [0x00020010] = DicomVR.UI, [0x00020012] = DicomVR.UI, [0x00020013] = DicomVR.SH, [0x00020016] = DicomVR.AE,

        [0x00080005] = DicomVR.CS, [0x00080008] = DicomVR.CS, [0x00080016] = DicomVR.UI, [0x00080018] = DicomVR.UI,
        [0x00080020] = DicomVR.DA, [0x00080021] = DicomVR.DA, [0x00080022] = DicomVR.DA, [0x00080023] = DicomVR.DA,
        [0x00080060] = DicomVR.CS, [0x00080070] = DicomVR.LO,

        [0x00100010] = DicomVR.PN, [0x00100020] = DicomVR.LO, [0x00100030] = DicomVR.DA, [0x00100040] = DicomVR.CS,
        [0x00101010] = DicomVR.AS,

        [0x00180015] = DicomVR.CS, [0x00185101] = DicomVR.CS,

        [0x0020000D] = DicomVR.UI, [0x0020000E] = DicomVR.UI, [0x00200013] = DicomVR.IS, [0x00200032] = DicomVR.DS,
        [0x00200037] = DicomVR.DS, [0x00200060] = DicomVR.CS, [0x00200062] = DicomVR.CS, [0x00201041] = DicomVR.DS,

        [0x00280002] = DicomVR.US, [0x00280004] = DicomVR.CS, [0x00280006] = DicomVR.US, [0x00280008] = DicomVR.IS,
        [0x00280010] = DicomVR.US, [0x00280011] = DicomVR.US, [0x00280030] = DicomVR.DS, [0x00280100] = DicomVR.US,
        [0x00280101] = DicomVR.US, [0x00280102] = DicomVR.US, [0x00280103] = DicomVR.US,
        // The pixel pipeline's inputs: pixel padding, VOI window, modality rescale, palette colour lookup tables.
        // Padding is "US or SS" by the pixel representation; its reader takes the words as stored bits, so US serves both.
        [0x00280120] = DicomVR.US, [0x00280121] = DicomVR.US,
        [0x00281050] = DicomVR.DS, [0x00281051] = DicomVR.DS, [0x00281052] = DicomVR.DS, [0x00281053] = DicomVR.DS,
        [0x00281056] = DicomVR.CS,
        [0x00281101] = DicomVR.US, [0x00281102] = DicomVR.US, [0x00281103] = DicomVR.US,
        [0x00281201] = DicomVR.OW, [0x00281202] = DicomVR.OW, [0x00281203] = DicomVR.OW,
        [0x00281221] = DicomVR.OW, [0x00281222] = DicomVR.OW, [0x00281223] = DicomVR.OW,
        [0x00289132] = DicomVR.SQ, [0x00289145] = DicomVR.SQ,

        // Enhanced multi-frame functional groups, which hold the geometry of InstanceMetadata: a defined-length
        // sequence is only descended into when the dictionary says SQ.
        [0x52009229] = DicomVR.SQ, [0x52009230] = DicomVR.SQ,
        [0x00209113] = DicomVR.SQ, [0x00209116] = DicomVR.SQ, [0x00289110] = DicomVR.SQ,

        [0x7FE00001] = DicomVR.OV, [0x7FE00002] = DicomVR.OV, [0x7FE00008] = DicomVR.OF, [0x7FE00009] = DicomVR.OD,
        [0x7FE00010] = DicomVR.OW,
    }.ToFrozenDictionary();

    /// <summary>The VR implicit VR data implies for <paramref name="tag"/>, or UN when this dictionary does not know it.</summary>
    public static DicomVR Lookup(DicomTag tag)
    {
        if (Entries.TryGetValue(tag.Value, out var vr)) return vr;
        // Group lengths are UL in every group; private creators (gggg,0010-00FF) are LO (PS3.5 7.8.1).
        if (tag.IsGroupLength) return DicomVR.UL;
        if (tag.IsPrivate && tag.Element is >= 0x0010 and <= 0x00FF) return DicomVR.LO;
        return DicomVR.UN;
    }
}
