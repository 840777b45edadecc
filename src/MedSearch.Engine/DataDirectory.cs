namespace MedSearch.Engine;

/// <summary>
/// The folder that holds one collection: the FASTER store, the HNSW index files, prepared models and the
/// collection's settings. Opening it for writing takes an exclusive lock file, because FASTER's log and the
/// index files must have a single writer; a second process gets a clear "in use" error instead of corruption.
/// </summary>
public sealed class DataDirectory : IDisposable
{
    public const string EnvironmentVariable = "MEDSEARCH_DATA";
    public const string DefaultPath = "index-data";

    private FileStream? _lock;

    private DataDirectory(string path, FileStream lockFile)
    {
        Path = path;
        _lock = lockFile;
    }

    public string Path { get; }
    public string StorePath => System.IO.Path.Combine(Path, "store");
    public string IndexPath => System.IO.Path.Combine(Path, "hnsw");
    public string SettingsFile => System.IO.Path.Combine(Path, "collection.json");

    /// <summary>--data wins, then MEDSEARCH_DATA, then ./index-data.</summary>
    public static string Resolve(string? option)
    {
        return System.IO.Path.GetFullPath(Setting.From(option, EnvironmentVariable) ?? DefaultPath);
    }

    public static DataDirectory Open(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        try
        {
            Directory.CreateDirectory(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CollectionException($"data directory {full} cannot be created: {e.Message}", e);
        }

        var lockPath = System.IO.Path.Combine(full, "LOCK");
        try
        {
            // FileShare.None is an exclusive advisory lock on Linux too; the OS drops it if the process dies.
            var stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            using (var writer = new StreamWriter(stream, leaveOpen: true))
                writer.Write($"{Environment.ProcessId}\n");
            stream.Flush(flushToDisk: true);
            return new DataDirectory(full, stream);
        }
        catch (IOException e)
        {
            throw new DataDirectoryInUseException(
                $"data directory {full} is in use by another MedSearch process (lock file {lockPath}); stop it or use another --data directory", e);
        }
    }

    public void Dispose()
    {
        _lock?.Dispose();
        _lock = null;
    }
}
