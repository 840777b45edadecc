using Xunit;

namespace MedSearch.Dicom.Codecs.Tests;

public class JpegLsTests
{
    public static TheoryData<int, int, int, bool, string> LosslessCases => new()
    {
        // samples, bits allocated, bits stored, signed, dcmcjpls interleave option
        { 1, 8, 8, false, "+il" },
        { 1, 16, 16, false, "+il" },
        { 1, 16, 12, true, "+il" },
        { 1, 16, 16, true, "+il" },
        { 3, 8, 8, false, "+il" },
        { 3, 8, 8, false, "+is" },
        { 3, 8, 8, false, "+in" },
        { 3, 16, 12, false, "+in" },
    };

    [Theory]
    [MemberData(nameof(LosslessCases))]
    public void Dcmtk_lossless_decodes_identically(int samples, int bitsAllocated, int bitsStored, bool signed, string interleave)
    {
        var image = TestImage.Create(57, 83, samples, bitsAllocated, bitsStored, signed, extremes: true);
        var encoded = Tools.Convert(image, "dcmcjpls", "+el", interleave);
        Assert.Equal("1.2.840.10008.1.2.4.80", encoded.TransferSyntax);
        var decoded = Pixels.Decode(encoded);
        Pixels.AssertIdentical(image, decoded);
        Assert.Equal(image.Format.PhotometricInterpretation, decoded.Photometric);
    }

    [Fact]
    public void Gdcm_lossless_decodes_identically()
    {
        var image = TestImage.Create(40, 64, 3, 8, 8, false, extremes: true);
        Pixels.AssertIdentical(image, Pixels.Decode(Tools.Convert(image, "gdcmconv", "-L")));
    }

    [Theory]
    [InlineData(1, 8, 8)]
    [InlineData(1, 16, 16)]
    [InlineData(3, 8, 8)]
    public void Near_lossless_stays_within_its_bound(int samples, int bitsAllocated, int bitsStored)
    {
        var image = TestImage.Create(57, 83, samples, bitsAllocated, bitsStored, false);
        var encoded = Tools.Convert(image, "dcmcjpls", "+en", "+md", "3");
        Assert.Equal("1.2.840.10008.1.2.4.81", encoded.TransferSyntax);
        var decoded = Pixels.Decode(encoded);
        // JPEG-LS near-lossless guarantees |error| <= NEAR for every sample.
        Assert.InRange(Pixels.MaxAbsoluteError(image, decoded), 1, 3);
    }
}
