using System.Collections.Frozen;

namespace MedSearch.Dicom;

/// <summary>How Pixel Data is stored under a transfer syntax: which codestream a frame starts with.</summary>
public enum PixelEncoding
{
    /// <summary>Uncompressed samples in the dataset's byte order.</summary>
    Native,
    Rle,
    /// <summary>JPEG baseline, extended and lossless: frames start with SOI (FFD8).</summary>
    Jpeg,
    /// <summary>JPEG-LS: frames also start with SOI (FFD8).</summary>
    JpegLs,
    /// <summary>JPEG 2000 and High-Throughput JPEG 2000: frames start with SOC (FF4F) or a JP2 signature box.</summary>
    Jpeg2000,
    JpegXl,
    /// <summary>Deflated Image Frame Compression: each frame a raw deflate stream.</summary>
    DeflatedFrames,
    /// <summary>Encapsulated Uncompressed Explicit VR Little Endian: uncompressed frames, one per fragment.</summary>
    EncapsulatedUncompressed,
    /// <summary>MPEG-2, H.264, HEVC: one video stream, not separately encoded frames.</summary>
    Video,
}

/// <summary>
/// A transfer syntax (PS3.5 10, PS3.6 Table A-1): how the dataset after the file meta group is encoded and how
/// Pixel Data is stored. Unknown UIDs get a record with <see cref="IsKnown"/> false: PS3.5 requires every transfer
/// syntax other than the three native ones to use explicit VR little endian with encapsulated pixel data, so the
/// header still reads; only the pixels are refused.
/// </summary>
public sealed record TransferSyntax(
    string Uid,
    string Name,
    bool IsExplicitVR,
    bool IsBigEndian,
    bool IsDeflated,
    bool IsEncapsulated,
    bool IsLossy,
    PixelEncoding PixelEncoding,
    bool IsKnown = true)
{
    public static readonly TransferSyntax ImplicitVRLittleEndian =
        new("1.2.840.10008.1.2", "Implicit VR Little Endian", false, false, false, false, false, PixelEncoding.Native);
    public static readonly TransferSyntax ExplicitVRLittleEndian =
        new("1.2.840.10008.1.2.1", "Explicit VR Little Endian", true, false, false, false, false, PixelEncoding.Native);
    public static readonly TransferSyntax EncapsulatedUncompressed =
        Encapsulated("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", false, PixelEncoding.EncapsulatedUncompressed);
    public static readonly TransferSyntax DeflatedExplicitVRLittleEndian =
        new("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", true, false, true, false, false, PixelEncoding.Native);
    public static readonly TransferSyntax ExplicitVRBigEndian =
        new("1.2.840.10008.1.2.2", "Explicit VR Big Endian", true, true, false, false, false, PixelEncoding.Native);

    public static readonly TransferSyntax JpegBaseline = Encapsulated("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", true, PixelEncoding.Jpeg);
    public static readonly TransferSyntax JpegExtended = Encapsulated("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", true, PixelEncoding.Jpeg);
    public static readonly TransferSyntax JpegLossless = Encapsulated("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", false, PixelEncoding.Jpeg);
    public static readonly TransferSyntax JpegLosslessSV1 = Encapsulated("1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])", false, PixelEncoding.Jpeg);
    public static readonly TransferSyntax JpegLsLossless = Encapsulated("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", false, PixelEncoding.JpegLs);
    public static readonly TransferSyntax JpegLsNearLossless = Encapsulated("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression", true, PixelEncoding.JpegLs);
    public static readonly TransferSyntax Jpeg2000Lossless = Encapsulated("1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", false, PixelEncoding.Jpeg2000);
    public static readonly TransferSyntax Jpeg2000 = Encapsulated("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", true, PixelEncoding.Jpeg2000);
    public static readonly TransferSyntax HtJpeg2000Lossless = Encapsulated("1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)", false, PixelEncoding.Jpeg2000);
    public static readonly TransferSyntax HtJpeg2000RpclLossless = Encapsulated("1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)", false, PixelEncoding.Jpeg2000);
    public static readonly TransferSyntax HtJpeg2000 = Encapsulated("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", true, PixelEncoding.Jpeg2000);
    public static readonly TransferSyntax RleLossless = Encapsulated("1.2.840.10008.1.2.5", "RLE Lossless", false, PixelEncoding.Rle);

    private static readonly FrozenDictionary<string, TransferSyntax> Registry = new[]
    {
        ImplicitVRLittleEndian, ExplicitVRLittleEndian, EncapsulatedUncompressed, DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        JpegBaseline, JpegExtended, JpegLossless, JpegLosslessSV1, JpegLsLossless, JpegLsNearLossless,
        Jpeg2000Lossless, Jpeg2000,
        Encapsulated("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)", false, PixelEncoding.Jpeg2000),
        Encapsulated("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component Image Compression", true, PixelEncoding.Jpeg2000),
        HtJpeg2000Lossless, HtJpeg2000RpclLossless, HtJpeg2000,
        Encapsulated("1.2.840.10008.1.2.4.110", "JPEG XL Lossless", false, PixelEncoding.JpegXl),
        Encapsulated("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", true, PixelEncoding.JpegXl),
        Encapsulated("1.2.840.10008.1.2.4.112", "JPEG XL", true, PixelEncoding.JpegXl),
        Encapsulated("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.100.1", "Fragmentable MPEG2 Main Profile / Main Level", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.101.1", "Fragmentable MPEG2 Main Profile / High Level", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.102.1", "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.103.1", "Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.104.1", "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.105.1", "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.106.1", "Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", true, PixelEncoding.Video),
        Encapsulated("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", true, PixelEncoding.Video),
        RleLossless,
        Encapsulated("1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression", false, PixelEncoding.DeflatedFrames),
    }.ToFrozenDictionary(ts => ts.Uid, StringComparer.Ordinal);

    /// <summary>The registered syntax for <paramref name="uid"/>, or an unknown one that reads as explicit VR little endian.</summary>
    public static TransferSyntax Lookup(string uid) =>
        Registry.TryGetValue(uid, out var known)
            ? known
            : new TransferSyntax(uid, "unknown transfer syntax", true, false, false, true, false, PixelEncoding.Native, IsKnown: false);

    public override string ToString() => $"{Name} ({Uid})";

    private static TransferSyntax Encapsulated(string uid, string name, bool lossy, PixelEncoding encoding) =>
        new(uid, name, true, false, false, true, lossy, encoding);
}
