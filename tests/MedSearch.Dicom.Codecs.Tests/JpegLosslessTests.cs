using Xunit;

namespace MedSearch.Dicom.Codecs.Tests;

public class JpegLosslessTests
{
    public static TheoryData<int, int, int, int, bool> PredictorsAndFormats()
    {
        var data = new TheoryData<int, int, int, int, bool>();
        for (int predictor = 1; predictor <= 7; predictor++)
        {
            // predictor, samples, bits allocated, bits stored, signed
            data.Add(predictor, 1, 8, 8, false);
            data.Add(predictor, 1, 16, 16, false);
            data.Add(predictor, 1, 16, 12, true);
            data.Add(predictor, 1, 16, 16, true);
            data.Add(predictor, 3, 8, 8, false);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(PredictorsAndFormats))]
    public void Dcmtk_lossless_decodes_identically_for_every_predictor(int predictor, int samples, int bitsAllocated, int bitsStored, bool signed)
    {
        var image = TestImage.Create(61, 77, samples, bitsAllocated, bitsStored, signed, extremes: true);
        var encoded = Tools.Convert(image, "dcmcjpeg", "+el", "+sv", predictor.ToString());
        Assert.Equal("1.2.840.10008.1.2.4.57", encoded.TransferSyntax);
        var decoded = Pixels.Decode(encoded);
        Pixels.AssertIdentical(image, decoded);
        Assert.Equal(image.Format.PhotometricInterpretation, decoded.Photometric);
    }

    [Fact]
    public void Selection_value_1_syntax_decodes_identically()
    {
        var image = TestImage.Create(50, 64, 1, 16, 16, false, extremes: true);
        var encoded = Tools.Convert(image, "dcmcjpeg", "+e1");
        Assert.Equal("1.2.840.10008.1.2.4.70", encoded.TransferSyntax);
        Pixels.AssertIdentical(image, Pixels.Decode(encoded));
    }

    [Fact]
    public void Gdcm_lossless_decodes_identically()
    {
        var image = TestImage.Create(45, 70, 1, 16, 16, false, extremes: true);
        var encoded = Tools.Convert(image, "gdcmconv", "-J");
        Pixels.AssertIdentical(image, Pixels.Decode(encoded));
    }

    [Fact]
    public void Point_transform_restores_the_shifted_bits()
    {
        var image = TestImage.Create(33, 40, 1, 16, 16, false);
        var encoded = Tools.Convert(image, "dcmcjpeg", "+el", "+sv", "4", "+pt", "3");
        Pixels.AssertIdentical(image.Map(v => v >> 3 << 3), Pixels.Decode(encoded));
    }

    public static TheoryData<int, int, bool, int> RestartCases()
    {
        var data = new TheoryData<int, int, bool, int>();
        for (int predictor = 1; predictor <= 7; predictor++)
        {
            // predictor, restart interval (MCUs; the image is 29 wide), interleaved, samples
            data.Add(predictor, 29, true, 3);
            data.Add(predictor, 11, true, 3);
            data.Add(predictor, 11, false, 3);
            data.Add(predictor, 1, true, 1);
            data.Add(predictor, 0, false, 3);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(RestartCases))]
    public void Restart_intervals_and_separate_scans_decode_identically(int predictor, int restartInterval, bool interleaved, int samples)
    {
        var image = TestImage.Create(23, 29, samples, 16, 16, false, extremes: true);
        byte[] jpeg = LosslessJpegWriter.Encode(image, 16, predictor, restartInterval, interleaved);
        Pixels.AssertIdentical(image, Pixels.Decode(new JpegLosslessDecoder(), jpeg, image.Format));
    }

    [Theory]
    [InlineData(2, 8, false)]
    [InlineData(7, 8, true)]
    [InlineData(12, 16, true)]
    [InlineData(15, 16, false)]
    public void Every_precision_decodes_identically(int precision, int bitsAllocated, bool signed)
    {
        var image = TestImage.Create(19, 21, 1, bitsAllocated, precision, signed, extremes: true);
        byte[] jpeg = LosslessJpegWriter.Encode(image, precision, 7, 5, interleaved: true);
        Pixels.AssertIdentical(image, Pixels.Decode(new JpegLosslessDecoder(), jpeg, image.Format));
    }

    [Fact]
    public void Streams_under_the_other_jpeg_syntax_are_decoded_for_what_they_are()
    {
        var image = TestImage.Create(32, 48, 1, 8, 8, false);
        var lossless = Tools.Convert(image, "dcmcjpeg", "+el", "+sv", "5");
        Pixels.AssertIdentical(image, Pixels.Decode(new JpegBaselineDecoder(), lossless.Frame, lossless.Format));

        var baseline = Tools.Convert(image, "dcmcjpeg", "+eb");
        var viaLossless = Pixels.Decode(new JpegLosslessDecoder(), baseline.Frame, baseline.Format);
        Assert.Equal(Pixels.Decode(baseline).Bytes, viaLossless.Bytes);
    }
}
