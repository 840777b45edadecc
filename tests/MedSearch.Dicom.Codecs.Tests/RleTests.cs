using Xunit;

namespace MedSearch.Dicom.Codecs.Tests;

public class RleTests
{
    public static TheoryData<int, int, int, bool> Formats => new()
    {
        // samples, bits allocated, bits stored, signed
        { 1, 8, 8, false },
        { 1, 16, 16, false },
        { 1, 16, 12, true },
        { 1, 16, 16, true },
        { 3, 8, 8, false },
        { 3, 16, 16, false },
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void Dcmtk_rle_decodes_identically(int samples, int bitsAllocated, int bitsStored, bool signed)
    {
        var image = TestImage.Create(67, 53, samples, bitsAllocated, bitsStored, signed, extremes: true);
        var encoded = Tools.Convert(image, "dcmcrle");
        Assert.Equal("1.2.840.10008.1.2.5", encoded.TransferSyntax);
        var decoded = Pixels.Decode(encoded);
        Pixels.AssertIdentical(image, decoded);
        Assert.Equal(image.Format.PhotometricInterpretation, decoded.Photometric);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Gdcm_rle_decodes_identically(int samples, int bitsAllocated, int bitsStored, bool signed)
    {
        var image = TestImage.Create(40, 301, samples, bitsAllocated, bitsStored, signed, extremes: true);
        var encoded = Tools.Convert(image, "gdcmconv", "-R");
        Assert.Equal("1.2.840.10008.1.2.5", encoded.TransferSyntax);
        Pixels.AssertIdentical(image, Pixels.Decode(encoded));
    }

    [Fact]
    public void Thirty_two_bit_samples_decode_identically()
    {
        var image = TestImage.Create(16, 24, 1, 32, 32, false);
        var encoded = Tools.Convert(image, "dcmcrle");
        Pixels.AssertIdentical(image, Pixels.Decode(encoded));
    }
}
