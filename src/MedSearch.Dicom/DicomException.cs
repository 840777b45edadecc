namespace MedSearch.Dicom;

/// <summary>
/// The input is not DICOM, is malformed, exceeds a <see cref="DicomReadLimits"/> bound, or asks for something this
/// reader does not support. <see cref="Source"/> names the file (or whatever the caller called the bytes) and
/// <see cref="Reason"/> says what was wrong, precisely enough to find it with a hex dump.
/// </summary>
public sealed class DicomException : Exception
{
    public DicomException(string source, string reason, Exception? inner = null) : base($"{source}: {reason}", inner)
    {
        Source = source;
        base.Source = source;
        Reason = reason;
    }

    /// <summary>The file (or other name) the bytes were opened under; <see cref="Exception.Source"/> holds the same.</summary>
    public new string Source { get; }

    public string Reason { get; }
}
