namespace MedSearch.Imaging;

/// <summary>
/// The input could not be turned into pixels. The message names the reason in words a user can act on;
/// <see cref="Source"/> names the file or upload when known.
/// </summary>
public sealed class ImageDecodeException : Exception
{
    public ImageDecodeException(string source, string reason, Exception? inner = null)
        : base($"{source}: {reason}", inner)
    {
        Source = source;
        Reason = reason;
    }

    public new string Source { get; }
    public string Reason { get; }
}
