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

    /// <summary>True when <paramref name="file"/> is a DICOMDIR rather than an instance.</summary>
    public static bool Is(DicomFile file) => file.FileMetaInformation.GetString(DicomTag.MediaStorageSopClassUid)?.Trim() == MediaStorageDirectorySopClass;

    /// <summary>
    /// The files the DICOMDIR at <paramref name="path"/> references (Referenced File ID, relative to its folder),
    /// in record order, each once. References that leave the file set's folder are refused: a crafted DICOMDIR
    /// must not make ingest read elsewhere.
    /// </summary>
    /// <exception cref="DicomException">Not a DICOMDIR, or one whose references cannot be read.</exception>
    public static IReadOnlyList<string> ReferencedFiles(string path)
    {
        var file = DicomFile.Open(path);
        if (!Is(file)) throw new DicomException(path, $"not a DICOMDIR (Media Storage SOP Class is not {MediaStorageDirectorySopClass})");
        var folder = Path.GetFullPath(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var files = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var record in file.Dataset.GetSequence(DirectoryRecordSequence))
        {
            var parts = record.GetStrings(ReferencedFileId).Select(p => p.Trim()).Where(p => p.Length > 0).ToArray();
            if (parts.Length == 0) continue;
            var full = Path.GetFullPath(Path.Combine([folder, .. parts]));
            if (!full.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new DicomException(path, $"a directory record references {string.Join('\\', parts)}, outside the file set's folder");
            if (seen.Add(full)) files.Add(full);
        }
        return files;
    }
}
