namespace MedSearch.Imaging;

/// <summary>
/// The input could not be turned into pixels. The message names the reason in words a user can act on;
/// <see cref="Source"/> names the file or upload when known.
/// </summary>
public class ImageDecodeException : Exception
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

/// <summary>
/// The input is readable but holds no image (a text file, a DICOMDIR, a structured report): a bulk job skips it
/// rather than counting it as a failure.
/// </summary>
public sealed class NotAnImageException(string source, string reason) : ImageDecodeException(source, reason);
