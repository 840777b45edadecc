using System.Buffers.Binary;
using MedSearch.Dicom.Codecs;
using MedSearch.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MedSearch.Dicom.Tests;

/// <summary>
/// The encapsulated files of datasets/dicom, every frame decoded by MedSearch.Dicom.Codecs, against pydicom 2.3.1 +
/// GDCM (oracle.tsv, and for the comparisons that need whole arrays, the same pydicom run now by pydicom_arrays.py).
/// </summary>
public sealed class CompressedOracleTests(ITestOutputHelper output)
{
    /// <summary>
    /// Lossy frames have no exact answer: GDCM decodes JPEG with libjpeg's integer IDCT, we with JpegLibrary's float
    /// IDCT. ISO/IEC 10918-2 lets a conforming IDCT be one level off the reference per sample, so two conforming
    /// decoders may be two apart. The mean bounds what rounding can do: a wrong level shift, dequantisation or
    /// upsampling moves it by whole levels, rounding noise by hundredths (measured: at most 0.013). JPEG 2000 and
    /// JPEG-LS go through the same OpenJPEG and CharLS as GDCM's and are expected to match exactly.
    /// </summary>
    private const long LossyMaxDifference = 2;
    private const double LossyMeanDifference = 0.1;

    /// <summary>
    /// pydicom leaves JPEG YCbCr as stored; the codecs convert it to RGB (IFrameDecoder's contract). Compared with
    /// pydicom's array passed through pydicom's own convert_color_space, the IDCT's level of difference is amplified
    /// by the conversion (one level of Cb is 1.772 levels of blue) and GDCM's rounding of YCbCr to 8 bits comes on
    /// top: up to 1 + 1.772 + 0.5 + rounding, hence 4. The mean stays at rounding noise (measured: at most 0.023).
    /// </summary>
    private const long ColourMaxDifference = 4;
    private const double ColourMeanDifference = 0.1;

    /// <summary>
    /// Files pydicom decodes and we refuse, and why. The file exists to test fragment parsing: its one 250-byte
    /// fragment carries the bytes of a sequence delimiter (FFFE,E0DD) inside the codestream, written over the SIZ
    /// segment, so the image is 3,722,444,032 pixels wide in 256-pixel tiles. OpenJPEG in strict mode refuses that;
    /// GDCM's lenient decoder makes an image of it. What can be checked is that the reader did not stop at the
    /// embedded delimiter: the whole fragment reaches the codec.
    /// </summary>
    private static readonly Dictionary<string, string> RefusedDeliberately = new()
    {
        ["pydicom/test_files/JPEG2000-embedded-sequence-delimiter.dcm"] = "Invalid number of tiles",
    };

    /// <summary>
    /// JPEG-LS frames split over several fragments without a basic offset table: GDCM decodes only part of the
    /// stream and pydicom returns zeros (oracle.tsv) or, run again, whatever the buffer held. The same CT frames
    /// are in the corpus unfragmented, where pydicom agrees with us; each fragmented file is checked against that.
    /// </summary>
    private static readonly Dictionary<string, string> UnfragmentedTwins = new()
    {
        ["dicomParser/testImages/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_ls.80.dcm"] =
            "dicomParser/testImages/encapsulated/multi-frame/CT0012.not_fragmented_bot_jpeg_ls.80.dcm",
        ["dicomParser/testImages/encapsulated/multi-frame/CT0012.fragmented_no_bot_jpeg_ls.81.dcm"] =
            "dicomParser/testImages/encapsulated/multi-frame/CT0012.not_fragmented_bot_jpeg_ls.80.dcm",
    };

    private sealed class Tally
    {
        public int Files, Frames, Md5Lossless, Md5Lossy, LossyWithinTolerance, Deliberate;
    }

    [SharedDataFact("dicom")]
    public void Compressed_frames_decode_like_pydicoms_pixel_array()
    {
        var rows = OracleRow.Load().Where(r => r.Status == "ok" && !r.IsNative).ToList();
        var byPath = rows.ToDictionary(r => r.Path);
        var tally = new Tally();
        var failures = new List<string>();
        var decoded = new Dictionary<string, (SampleArray Array, string Photometric, DicomFile File)>();
        foreach (var row in rows)
        {
            try
            {
                var file = DicomFile.Open(row.FullPath);
                var (array, photometric) = SampleArray.Decode(file);
                decoded[row.Path] = (array, photometric, file);
            }
            catch (Exception e) when (e is DicomException or CodecException)
            {
                if (RefusedDeliberately.TryGetValue(row.Path, out var expected) && e.Message.Contains(expected) && WholeFragmentReachesCodec(row))
                {
                    tally.Deliberate++;
                    output.WriteLine($"refused deliberately: {row.Path}: {e.Message}");
                }
                else
                {
                    failures.Add($"{row.Path} ({row.TransferSyntax}): {e.Message}");
                }
            }
        }

        // Everything that does not hash like the oracle is compared with pydicom's whole array, asked for in one run.
        var unequal = rows.Where(r => decoded.TryGetValue(r.Path, out var d) && d.Array.Md5 != r["md5"] && !UnfragmentedTwins.ContainsKey(r.Path)).ToList();
        var requests = unequal.Select(r => (r.FullPath, ToRgb: IsConvertedYbr(r, decoded[r.Path].Photometric))).ToList();
        var references = SampleArray.FromPydicom(requests);
        var reference = unequal.Select((r, i) => (r.Path, references[i])).ToDictionary(p => p.Path, p => p.Item2);

        foreach (var row in rows)
        {
            if (!decoded.TryGetValue(row.Path, out var ours)) continue;
            tally.Files++;
            tally.Frames += ours.File.GetPixelData().NumberOfFrames;
            bool lossy = TransferSyntax.Lookup(row.TransferSyntax).IsLossy;
            if (ours.Array.DType != row["dtype"] || ours.Array.Shape != row["shape"])
            {
                failures.Add($"{row.Path}: ours is {ours.Array.DType} {ours.Array.Shape}, pydicom's {row["dtype"]} {row["shape"]}");
                continue;
            }
            if (ours.Array.Md5 == row["md5"])
            {
                if (lossy) tally.Md5Lossy++;
                else tally.Md5Lossless++;
                continue;
            }
            string? verdict = UnfragmentedTwins.TryGetValue(row.Path, out var twin)
                ? CheckAgainstTwin(row, ours.Array, byPath[twin], decoded)
                : CheckAgainstPydicom(row, ours.Array, ours.Photometric, lossy, reference[row.Path], tally);
            if (verdict is null) continue;
            if (verdict.StartsWith("deliberately: ", StringComparison.Ordinal))
            {
                tally.Deliberate++;
                output.WriteLine($"differs {verdict}");
            }
            else
            {
                failures.Add($"{row.Path} ({row.TransferSyntax}): {verdict}");
            }
        }
        output.WriteLine($"compressed oracle: {rows.Count} files with pydicom's decode; {tally.Files} decoded, {tally.Frames} frames; " +
                         $"md5 equal: {tally.Md5Lossless} lossless + {tally.Md5Lossy} lossy; lossy within tolerance: {tally.LossyWithinTolerance}; " +
                         $"deliberate differences (verified): {tally.Deliberate}; failures: {failures.Count}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>A JPEG frame labelled YBR_FULL(_422) that the codec turned into RGB, which pydicom leaves as YCbCr.</summary>
    private static bool IsConvertedYbr(OracleRow row, string photometric) =>
        photometric == "RGB" && row["photometric"] is "YBR_FULL" or "YBR_FULL_422";

    /// <returns>Null when ours is within what the row allows (counted in <paramref name="tally"/>), "deliberately: why" for a verified difference, else what is wrong.</returns>
    private static string? CheckAgainstPydicom(OracleRow row, SampleArray ours, string photometric, bool lossy,
        (SampleArray? Array, string? Error) reference, Tally tally)
    {
        if (reference.Array is not { } theirs) return $"pydicom cannot decode it here ({reference.Error}), though the oracle's pydicom could";
        if (theirs.Shape != ours.Shape) return $"pydicom's array here is {theirs.DType} {theirs.Shape}, ours {ours.DType} {ours.Shape}";
        var (max, mean) = ours.Difference(theirs);
        if (IsConvertedYbr(row, photometric))
        {
            // Only DCT JPEG arrives here (the lossless and JPEG-LS decoders leave YBR_FULL as stored): lossy tolerance, plus the second rounding.
            return max <= ColourMaxDifference && mean <= ColourMeanDifference
                ? $"deliberately: {row.Path}: ours is RGB, pydicom's {row["photometric"]}; converted by pydicom to RGB it is within {max} (mean {mean:F3}) of ours"
                : $"ours (RGB) differs from pydicom's {row["photometric"]} converted to RGB by up to {max} (mean {mean:F3}); allowed {ColourMaxDifference} ({ColourMeanDifference})";
        }
        if (theirs.Md5 != row["md5"])
            return $"pydicom here decodes it to md5 {theirs.Md5}, the oracle's pydicom to {row["md5"]}: the reference has moved";
        if (lossy)
        {
            if (max > LossyMaxDifference || mean > LossyMeanDifference)
                return $"lossy decode differs from pydicom's by up to {max} (mean {mean:F4}); allowed {LossyMaxDifference} ({LossyMeanDifference})";
            tally.LossyWithinTolerance++;
            return null;
        }
        return SignExtendedOnly(ours, theirs, row) is { } why
            ? $"deliberately: {row.Path}: {why}"
            : $"lossless decode differs from pydicom's: up to {max} (mean {mean:F4}), md5 {ours.Md5}, pydicom {row["md5"]}";
    }

    /// <summary>
    /// pydicom 2.3 + GDCM return the BitsStored-bit pattern of signed JPEG-LS samples without sign extension (the
    /// 15-bit JLSL_16_15_1_1F.dcm reads 7..32760 as int16); the codecs' contract is two's complement at full width.
    /// Verified sample by sample: ours is theirs' low BitsStored bits, sign-extended.
    /// </summary>
    private static string? SignExtendedOnly(SampleArray ours, SampleArray theirs, OracleRow row)
    {
        int bits = int.Parse(row["bits_stored"]), allocated = int.Parse(row["bits_allocated"]);
        if (row["pixel_representation"] != "1" || bits >= allocated) return null;
        long changed = 0;
        for (long i = 0; i < ours.Count; i++)
        {
            long field = theirs[i] & ((1L << bits) - 1);
            long extended = field >= 1L << (bits - 1) ? field - (1L << bits) : field;
            if (ours[i] != extended) return null;
            if (ours[i] != theirs[i]) changed++;
        }
        return $"{changed} of {ours.Count} samples are negative {bits}-bit values that pydicom leaves unextended; ours are sign-extended to {allocated} bits";
    }

    /// <summary>The fragmented file must decode like its unfragmented twin: identically for lossless, within NEAR for near-lossless.</summary>
    private static string CheckAgainstTwin(OracleRow row, SampleArray ours, OracleRow twin,
        Dictionary<string, (SampleArray Array, string Photometric, DicomFile File)> decoded)
    {
        if (!decoded.TryGetValue(twin.Path, out var theirs) || theirs.Array.Md5 != twin["md5"])
            return $"its unfragmented twin {twin.Path} does not decode like pydicom's, so it cannot vouch for this one";
        var pixels = decoded[row.Path].File.GetPixelData();
        int near = 0;
        for (int i = 0; i < pixels.NumberOfFrames; i++) near = Math.Max(near, JpegLsNear(pixels.GetFrame(i).Span));
        var (max, mean) = ours.Difference(theirs.Array);
        string pydicom = $"pydicom's decode is broken (oracle: min {row["min"]}, max {row["max"]})";
        if (max > near)
            return $"differs from its unfragmented twin {twin.Path} by up to {max} (mean {mean:F3}), more than the codestream's NEAR {near}";
        return near == 0
            ? $"deliberately: {row.Path}: {pydicom}; ours equals {twin.Path}, which pydicom decodes identically"
            : $"deliberately: {row.Path}: {pydicom}; ours is within NEAR={near} (max {max}, mean {mean:F3}) of lossless {twin.Path}";
    }

    /// <summary>The NEAR parameter of a JPEG-LS stream's first scan (ITU T.87 C.2.3): the largest error near-lossless coding allows.</summary>
    private static int JpegLsNear(ReadOnlySpan<byte> codestream)
    {
        int p = 2;
        while (p + 4 <= codestream.Length && codestream[p] == 0xFF)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(codestream[(p + 2)..]);
            if (codestream[p + 1] == 0xDA)
            {
                int components = codestream[p + 4];
                return codestream[p + 5 + 2 * components];
            }
            p += 2 + length;
        }
        throw new InvalidDataException("JPEG-LS stream has no start of scan");
    }

    /// <summary>The one 250-byte fragment of JPEG2000-embedded-sequence-delimiter.dcm, delimiter bytes and all, is the frame.</summary>
    private static bool WholeFragmentReachesCodec(OracleRow row)
    {
        var pixels = DicomFile.Open(row.FullPath).GetPixelData();
        var frame = pixels.GetFrame(0).Span;
        return pixels.NumberOfFrames == 1 && frame.Length == 250 && frame.IndexOf((ReadOnlySpan<byte>)[0xFE, 0xFF, 0xDD, 0xE0]) > 0;
    }

    /// <summary>
    /// dcm_qa_ts: one Siemens MR slice stored in seven transfer syntaxes (native explicit/implicit little endian and
    /// big endian, RLE, JPEG lossless SV1 (twice: dcmcjpeg and gdcmconv), JPEG-LS lossless (twice), JPEG 2000
    /// lossless). All seven are lossless, so all nine files must hold the very same samples.
    /// </summary>
    [SharedDataFact("dicom/dcm_qa_ts")]
    public void Dcm_qa_ts_decodes_to_the_same_pixels_in_every_transfer_syntax()
    {
        var folder = Path.Combine(SharedData.Require("dicom/dcm_qa_ts"), "In");
        var files = Directory.GetFiles(folder, "*.dcm").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(9, files.Count);
        var reference = SampleArray.Decode(DicomFile.Open(files[0])).Array;
        var syntaxes = new HashSet<string>();
        foreach (var path in files)
        {
            var file = DicomFile.Open(path);
            Assert.False(file.TransferSyntax.IsLossy, $"{path} is {file.TransferSyntax}, which is lossy: the comparison below would need a tolerance");
            syntaxes.Add(file.TransferSyntax.Uid);
            var (array, photometric) = SampleArray.Decode(file);
            Assert.Equal("MONOCHROME2", photometric);
            var (max, mean) = array.Difference(reference);
            Assert.True(array.Md5 == reference.Md5, $"{Path.GetFileName(path)} ({file.TransferSyntax}) differs from 1.dcm by up to {max} (mean {mean:F3})");
            output.WriteLine($"{Path.GetFileName(path)}: {file.TransferSyntax}: md5 {array.Md5}");
        }
        Assert.Equal(7, syntaxes.Count);
    }
}
