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
