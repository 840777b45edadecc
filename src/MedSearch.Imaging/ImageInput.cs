using MedSearch.Dicom;

namespace MedSearch.Imaging;

/// <summary>Which frames of a multi-frame instance become images to embed.</summary>
public enum FrameSelection
{
    /// <summary>The middle frame: representative for cine and ultrasound loops, one case per instance.</summary>
    Middle,
    First,
    /// <summary>Every frame (enhanced CT/MR volumes; the study-level work pools them).</summary>
    All,
}

public sealed record ImageReadOptions
{
    public static readonly ImageReadOptions Default = new();

    public FrameSelection Frames { get; init; } = FrameSelection.Middle;

    /// <summary>Keyed hash for Patient ID; null gives instances no patient hash.</summary>
    public PatientHasher? PatientHasher { get; init; }

    public DicomReadLimits? Limits { get; init; }
}

/// <summary>One frame as the encoder will see it; <see cref="FrameIndex"/> counts from 0 (0 for PNG/JPEG).</summary>
public sealed record DecodedFrame(int FrameIndex, PixelImage Image);

/// <summary>What a file became: its frames' pixels and, for DICOM, the instance's header facts.</summary>
public sealed record ImageInput(ImageFormat Format, IReadOnlyList<DecodedFrame> Frames, InstanceMetadata? Dicom);

/// <summary>
/// A file whose header has been read and whose selected frames decode one at a time, for callers that must not
/// hold every frame of a long multi-frame instance at once (a 2,000-slice enhanced CT is gigabytes as floats).
/// It reads from the file's bytes, which must stay unchanged until the last <see cref="Decode"/>.
/// </summary>
public sealed class ImageFrames
{
    private readonly Func<int, DecodedFrame> _decode;

    internal ImageFrames(ImageFormat format, InstanceMetadata? dicom, IReadOnlyList<int> frameIndexes, Func<int, DecodedFrame> decode)
    {
        Format = format;
        Dicom = dicom;
        FrameIndexes = frameIndexes;
        _decode = decode;
    }

    public ImageFormat Format { get; }

    public InstanceMetadata? Dicom { get; }

    /// <summary>The frames selected, as frame numbers counted from 0, in file order.</summary>
    public IReadOnlyList<int> FrameIndexes { get; }

    /// <summary>Decodes the selected frame at <paramref name="position"/> in <see cref="FrameIndexes"/>.</summary>
    /// <exception cref="ImageDecodeException">The frame cannot be decoded; the message names the file and why.</exception>
    public DecodedFrame Decode(int position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(position, FrameIndexes.Count);
        return _decode(FrameIndexes[position]);
    }
}
