using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MedSearch.Engine;

/// <summary>
/// A case's natural key and the 63-bit id derived from it. The id is a hash of the key rather than a counter
/// so that re-indexing the same file or instance finds the same record without a separate key→id table;
/// the store keeps the key in each record, so a (practically impossible) collision is detected, not merged.
/// </summary>
public static class CaseId
{
    public const string FilePrefix = "file:";
    public const string SopPrefix = "sop:";

    /// <summary>Key for a non-DICOM image: its path relative to the indexed root, with '/' separators.</summary>
    public static string FileKey(string relativePath) => FilePrefix + relativePath.Replace('\\', '/');

    /// <summary>Key for a DICOM instance: its SOP Instance UID, wherever the file lives.</summary>
    public static string SopKey(string sopInstanceUid) => SopPrefix + sopInstanceUid;

    public static ulong FromKey(string key)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(key), hash);
        // 63 bits keeps ids positive in signed contexts (JSON, SQL exports); 0 is avoided as "no id".
        ulong id = BinaryPrimitives.ReadUInt64LittleEndian(hash) & 0x7FFF_FFFF_FFFF_FFFFUL;
        return id == 0 ? 1 : id;
    }

    public static string Format(ulong id) => id.ToString("x16", CultureInfo.InvariantCulture);

    public static bool TryParse(string text, out ulong id) =>
        ulong.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out id) && text.Length == 16;
}
