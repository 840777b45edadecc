using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.Dicom.Tests;

/// <summary>
/// InstanceMetadata on corpus files. Expected values were read with pydicom 2.3.1
/// (/usr/bin/python3 -c "import pydicom; ds = pydicom.dcmread(path); print(ds.StudyInstanceUID, ...)").
/// </summary>
public sealed class MetadataTests
{
    private static readonly PatientHasher Hasher = new(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());

    private static InstanceMetadata Read(string relative) =>
        InstanceMetadata.From(DicomFile.Open(Path.Combine(SharedData.Require("dicom"), relative)).Dataset, Hasher);

    [SharedDataFact("dicom")]
    public void CT_small_matches_pydicom()
    {
        var ct = Read("pydicom/test_files/CT_small.dcm");
        Assert.Equal("1.3.6.1.4.1.5962.1.2.1.20040119072730.12322", ct.StudyInstanceUid);
        Assert.Equal("1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322", ct.SeriesInstanceUid);
        Assert.Equal("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322", ct.SopInstanceUid);
        Assert.Equal("1.2.840.10008.5.1.4.1.1.2", ct.SopClassUid);
        Assert.Equal("CT", ct.Modality);
        Assert.Equal("O", ct.PatientSex);
        Assert.Equal(0, ct.PatientAgeYears); // PatientAge "000Y"
        Assert.Equal(new DateOnly(2004, 1, 19), ct.StudyDate);
        Assert.Equal("GE MEDICAL SYSTEMS", ct.Manufacturer);
        Assert.Null(ct.Laterality); // Laterality is present but empty
        Assert.Equal([-158.135803, -179.035797, -75.699997], ct.ImagePositionPatient!);
        Assert.Equal([1.0, 0, 0, 0, 1, 0], ct.ImageOrientationPatient!);
        Assert.Equal([0.661468, 0.661468], ct.PixelSpacing!);
        Assert.Equal(1, ct.InstanceNumber);
        Assert.Equal(-77.2040634155, ct.SliceLocation);
        Assert.Equal((128, 128, 1), (ct.Rows, ct.Columns, ct.NumberOfFrames));
        Assert.Equal("1.2.840.10008.1.2.1", ct.TransferSyntaxUid);
        Assert.Equal(Hasher.Hash("1CT1"), ct.PatientHash);
    }

    [SharedDataFact("dicom")]
    public void Age_comes_from_birth_and_study_dates_when_Patient_Age_is_absent()
    {
        // MR2_UNCI: no PatientAge, PatientBirthDate 19500112, StudyDate 20040826: 54 years.
        var mr = Read("pydicom-data/files/MR2_UNCI.dcm");
        Assert.Equal("1.3.6.1.4.1.5962.1.1.5.1.3.20040826185059.5457", mr.SopInstanceUid);
        Assert.Equal("MR", mr.Modality);
        Assert.Equal("M", mr.PatientSex);
        Assert.Equal(54, mr.PatientAgeYears);
        Assert.Equal(3, mr.InstanceNumber);

        // MR_small: neither age nor birth date.
        var small = Read("pydicom/test_files/MR_small.dcm");
        Assert.Equal("F", small.PatientSex);
        Assert.Null(small.PatientAgeYears);
    }

    [SharedDataFact("dicom")]
    public void Radiograph_view_and_body_part_match_pydicom()
    {
        var cr = Read("pydicom/test_files/dicomdirtests/77654033/CR1/6154");
        Assert.Equal("1.3.6.1.4.1.5962.1.1.0.0.0.1196527414.5534.0.11", cr.SopInstanceUid);
        Assert.Equal("CR", cr.Modality);
        Assert.Equal("LL", cr.ViewPosition);
        Assert.Equal("CSPINE", cr.BodyPartExamined);
        Assert.Equal(47, cr.PatientAgeYears); // "047Y"
        Assert.Null(cr.PatientSex); // present but empty
    }

    [SharedDataFact("dicom")]
    public void Enhanced_multi_frame_geometry_comes_from_the_functional_groups()
    {
        // eCT_Supplemental: no top-level geometry; pydicom's SharedFunctionalGroupsSequence[0] and
        // PerFrameFunctionalGroupsSequence[0] hold it.
        var ct = Read("pydicom-data/files/eCT_Supplemental.dcm");
        Assert.Equal("1.3.6.1.4.1.5962.1.1.10.3.1.1166562673.14401", ct.SopInstanceUid);
        Assert.Equal(2, ct.NumberOfFrames);
        Assert.Equal(52, ct.PatientAgeYears);
        Assert.Equal([0.388672, 0.388672], ct.PixelSpacing!);
        Assert.Equal([-1.0, 0, 0, 0, 1, 0], ct.ImageOrientationPatient!);
        Assert.Equal([99.5, -301.5, -159.0], ct.ImagePositionPatient!);
    }

    [SharedDataFact("dicom")]
    public void Character_sets_decode_Latin_1_and_UTF_8()
    {
        var root = SharedData.Require("dicom");
        string Name(string file) => DicomFile.Open(Path.Combine(root, "pydicom/charset_files", file)).Dataset.GetString(DicomTag.PatientName)!;
        Assert.Equal("Buc^Jérôme", Name("chrFren.dcm"));
        Assert.Equal("Äneas^Rüdiger", Name("chrGerm.dcm"));
        Assert.StartsWith("Wang^XiaoDong=王^小東", Name("chrX1.dcm"));
        // An item with its own ISO 2022 character sets decodes as Latin-1 rather than failing.
        var dataset = DicomFile.Open(Path.Combine(root, "pydicom/charset_files/chrSQEncoding.dcm")).Dataset;
        Assert.Equal("Doctor^Who^^MD", dataset.GetString(new DicomTag(0x0032, 0x1032)));
        Assert.NotNull(dataset.GetSequence(new DicomTag(0x0032, 0x1064))[0].GetString(DicomTag.PatientName));
    }

    [Theory]
    [InlineData("045Y", 45.0)]
    [InlineData("006M", 0.5)]
    [InlineData("002W", 14 / 365.25)]
    [InlineData("010D", 10 / 365.25)]
    [InlineData("45Y", 45.0)]
    [InlineData("045", null)]
    [InlineData("XYZY", null)]
    public void Patient_age_strings_parse_to_years(string text, double? years) =>
        Assert.Equal(years, InstanceMetadata.ParseAge(text));

    [Fact]
    public void Infants_get_fractional_years_from_their_birth_date()
    {
        var bytes = DicomBuilder.Part10("1.2.840.10008.1.2.1", new DicomBuilder()
            .String(0x0008, 0x0020, "DA", "20240401")
            .String(0x0010, 0x0020, "LO", "BABY-0042")
            .String(0x0010, 0x0030, "DA", "20240101").ToArray());
        var metadata = InstanceMetadata.From(DicomFile.Open(bytes, "baby.dcm").Dataset, Hasher);
        Assert.Equal(91 / 365.25, metadata.PatientAgeYears);
    }

    [Fact]
    public void Patient_ID_is_hashed_stably_per_key_and_never_exposed()
    {
        var bytes = DicomBuilder.Part10("1.2.840.10008.1.2.1", new DicomBuilder()
            .String(0x0010, 0x0010, "PN", "Secret^Name")
            .String(0x0010, 0x0020, "LO", "PID-12345").ToArray());
        var dataset = DicomFile.Open(bytes, "id.dcm").Dataset;
        var first = InstanceMetadata.From(dataset, Hasher);
        var again = InstanceMetadata.From(dataset, new PatientHasher(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
        var otherKey = InstanceMetadata.From(dataset, new PatientHasher(new byte[32]));
        Assert.Equal(32, first.PatientHash!.Length);
        Assert.Equal(first.PatientHash, again.PatientHash);
        Assert.NotEqual(first.PatientHash, otherKey.PatientHash);
        var everything = string.Join("|", typeof(InstanceMetadata).GetProperties().Select(p => p.GetValue(first)?.ToString())) + first;
        Assert.DoesNotContain("PID-12345", everything);
        Assert.DoesNotContain("Secret", everything);
        Assert.Null(Hasher.Hash("  "));
    }

    [Fact]
    public void Patient_key_is_created_once_with_owner_only_permissions()
    {
        var directory = Path.Combine(Path.GetTempPath(), "medsearch-key-" + Guid.NewGuid().ToString("N"));
        try
        {
            var key = PatientHasher.OpenOrCreateKey(directory);
            var path = Path.Combine(directory, PatientHasher.KeyFileName);
            Assert.Equal(32, key.Length);
            Assert.Equal(key, PatientHasher.OpenOrCreateKey(directory));
            if (!OperatingSystem.IsWindows())
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Single(Directory.GetFiles(directory));

            File.WriteAllBytes(path, new byte[7]);
            Assert.Contains("holds 7 bytes", Assert.Throws<InvalidDataException>(() => PatientHasher.OpenOrCreateKey(directory)).Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
