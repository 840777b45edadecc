namespace MedSearch.Embedding;

/// <summary>
/// A model or its manifest cannot be used. The message names the file and the reason in words an operator
/// can act on; <see cref="Path"/> is the file concerned.
/// </summary>
public sealed class EmbeddingModelException : Exception
{
    public EmbeddingModelException(string path, string reason, Exception? inner = null)
        : base($"{path}: {reason}", inner)
    {
        Path = path;
        Reason = reason;
    }

    public string Path { get; }
    public string Reason { get; }
}
