namespace MedSearch.Dicom;

/// <summary>
/// A DICOMDIR (PS3.10 §8, Media Storage Directory): the index of a DICOM file set, as found on CDs and in
/// PACS exports. Only what ingest needs is read: the files its directory records reference.
/// </summary>
public static class DicomDirectory
{
    public const string MediaStorageDirectorySopClass = "1.2.840.10008.1.3.10";

    private static readonly DicomTag DirectoryRecordSequence = new(0x0004, 0x1220);
    private static readonly DicomTag ReferencedFileId = new(0x0004, 0x1500);
    private static readonly DicomTag RecordInUseFlag = new(0x0004, 0x1410);

    /// <summary>True when <paramref name="file"/> is a DICOMDIR rather than an instance.</summary>
    public static bool Is(DicomFile file) => file.FileMetaInformation.GetString(DicomTag.MediaStorageSopClassUid)?.Trim() == MediaStorageDirectorySopClass;

    /// <summary>
    /// The files the DICOMDIR at <paramref name="path"/> references (Referenced File ID, relative to its folder),
    /// in record order, each once; records marked inactive (Record In-use Flag 0000H) are skipped. A component
    /// that does not exist as written is matched ignoring case, because CD file sets are upper case and Linux
    /// often mounts ISO 9660 in lower case. References that leave the file set's folder are refused: a crafted
    /// DICOMDIR must not make ingest read elsewhere.
    /// </summary>
    /// <exception cref="DicomException">Not a DICOMDIR, or one whose references cannot be read.</exception>
    public static IReadOnlyList<string> ReferencedFiles(string path)
    {
        var file = DicomFile.Open(path);
        if (!Is(file)) throw new DicomException(path, $"not a DICOMDIR (Media Storage SOP Class is not {MediaStorageDirectorySopClass})");
        var folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.GetDirectoryName(Path.GetFullPath(path))!));
        var inside = folder + Path.DirectorySeparatorChar;
        var files = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var record in file.Dataset.GetSequence(DirectoryRecordSequence))
        {
            if (record.GetUInt16(RecordInUseFlag) == 0) continue;
            var parts = record.GetStrings(ReferencedFileId).Select(p => p.Trim()).Where(p => p.Length > 0).ToArray();
            if (parts.Length == 0) continue;
            if (parts.Any(p => p is "." or ".." || p.Contains('/')))
                throw new DicomException(path, $"a directory record references {string.Join('\\', parts)}, outside the file set's folder");
            var full = Resolve(folder, parts);
            if (!full.StartsWith(inside, StringComparison.Ordinal))
                throw new DicomException(path, $"a directory record references {string.Join('\\', parts)}, outside the file set's folder");
            if (seen.Add(full)) files.Add(full);
        }
        return files;
    }

    /// <summary>The path of a file ID's components under <paramref name="folder"/>, each matched ignoring case when not found as written.</summary>
    private static string Resolve(string folder, string[] parts)
    {
        var current = folder;
        foreach (var part in parts)
        {
            var exact = Path.Combine(current, part);
            if (File.Exists(exact) || Directory.Exists(exact) || !Directory.Exists(current))
            {
                current = exact;
                continue;
            }
            current = Directory.EnumerateFileSystemEntries(current)
                .FirstOrDefault(e => string.Equals(Path.GetFileName(e), part, StringComparison.OrdinalIgnoreCase)) ?? exact;
        }
        return Path.GetFullPath(current);
    }
}
