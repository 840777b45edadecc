using System.Collections.Frozen;

namespace MedSearch.Dicom.Codecs;

/// <summary>Which decoder reads the frames of a transfer syntax. Decoders are stateless and safe to share across threads.</summary>
public static class FrameDecoders
{
    private static readonly FrozenDictionary<string, IFrameDecoder> Decoders = CreateDecoders();

    private static FrozenDictionary<string, IFrameDecoder> CreateDecoders()
    {
        var jpeg = new JpegBaselineDecoder();
        var lossless = new JpegLosslessDecoder();
        var jpegLs = new JpegLsDecoder();
        var jpeg2000 = new Jpeg2000Decoder();
        return new Dictionary<string, IFrameDecoder>(StringComparer.Ordinal)
        {
            ["1.2.840.10008.1.2.5"] = new RleDecoder(),
            ["1.2.840.10008.1.2.4.50"] = jpeg,        // JPEG Baseline (Process 1)
            ["1.2.840.10008.1.2.4.51"] = jpeg,        // JPEG Extended (Process 2 & 4)
            ["1.2.840.10008.1.2.4.53"] = jpeg,        // JPEG Spectral Selection (Process 6 & 8), retired but still archived
            ["1.2.840.10008.1.2.4.55"] = jpeg,        // JPEG Full Progression (Process 10 & 12), retired but still archived
            ["1.2.840.10008.1.2.4.57"] = lossless,    // JPEG Lossless, Non-Hierarchical (Process 14)
            ["1.2.840.10008.1.2.4.70"] = lossless,    // JPEG Lossless, Process 14, Selection Value 1
            ["1.2.840.10008.1.2.4.80"] = jpegLs,      // JPEG-LS Lossless
            ["1.2.840.10008.1.2.4.81"] = jpegLs,      // JPEG-LS Near-Lossless
            ["1.2.840.10008.1.2.4.90"] = jpeg2000,    // JPEG 2000 Lossless Only
            ["1.2.840.10008.1.2.4.91"] = jpeg2000,    // JPEG 2000
            ["1.2.840.10008.1.2.4.201"] = jpeg2000,   // HTJ2K Lossless Only
            ["1.2.840.10008.1.2.4.202"] = jpeg2000,   // HTJ2K RPCL Lossless Only
            ["1.2.840.10008.1.2.4.203"] = jpeg2000,   // HTJ2K
        }.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>The transfer syntaxes whose frames a decoder here reads.</summary>
    public static IReadOnlyCollection<string> CompressedTransferSyntaxes => Decoders.Keys;

    /// <returns>The decoder for the transfer syntax's frames, or null when its frames are stored uncompressed.</returns>
    /// <exception cref="CodecException">A compressed transfer syntax no decoder here reads (MPEG, HEVC, JPIP, ...).</exception>
    public static IFrameDecoder? ForTransferSyntax(string transferSyntaxUid)
    {
        // UI values are padded to even length with NUL; readers do not always strip it.
        string uid = transferSyntaxUid.TrimEnd('\0', ' ');
        // Native syntaxes (the deflated one included: its dataset is deflated, not its frames) need no decoder.
        if (!TransferSyntax.Lookup(uid).IsEncapsulated)
            return null;
        return Decoders.TryGetValue(uid, out IFrameDecoder? decoder)
            ? decoder
            : throw new CodecException($"Transfer syntax {uid} is neither uncompressed nor one the decoders here read.");
    }
}
