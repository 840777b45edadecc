namespace MedSearch.Embedding;

/// <summary>
/// Whole-file replacement that readers never see half-done: a crash or a concurrent reader finds either the
/// old file or the complete new one.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        // Unique per writer so that two processes preparing the same model do not write into one temp file.
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                // Flushed to disk before the rename, or a power loss could leave the new name on empty data.
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
