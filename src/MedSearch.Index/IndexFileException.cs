namespace MedSearch.Index;

/// <summary>
/// An index file cannot be loaded: missing, truncated, corrupt, or built for other dimensions or metric.
/// The index is derived data, so the usual answer is to rebuild it from the store.
/// </summary>
public sealed class IndexFileException : Exception
{
    public IndexFileException(string message) : base(message) { }

    public IndexFileException(string message, Exception inner) : base(message, inner) { }
}
