using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Xunit;

namespace MedSearch.Dicom.Tests;

/// <summary>The reader on files built byte by byte: structure, syntaxes, strings, and refusals with their reasons.</summary>
public sealed class ReaderTests
{
    private const string ExplicitLE = "1.2.840.10008.1.2.1";
    private const string ImplicitLE = "1.2.840.10008.1.2";
    private const string ExplicitBE = "1.2.840.10008.1.2.2";

    private static DicomFile Open(string transferSyntax, DicomBuilder dataset, DicomReadLimits? limits = null) =>
        DicomFile.Open(DicomBuilder.Part10(transferSyntax, dataset.ToArray()), "test.dcm", limits);

    private static DicomException Refused(Action read)
    {
        var e = Assert.Throws<DicomException>(read);
        Assert.Equal("test.dcm", e.Source);
        Assert.StartsWith("test.dcm: ", e.Message);
        return e;
    }

    [Fact]
    public void Reads_meta_group_and_explicit_little_endian_strings()
    {
        var file = Open(ExplicitLE, new DicomBuilder()
            .String(0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\AXIAL")
            .String(0x0008, 0x0018, "UI", "1.2.3.4.5")
            .String(0x0010, 0x0010, "PN", " Doe^John ")
            .String(0x0020, 0x4000, "LT", "  first line\\not a separator  "));
        Assert.True(file.HasPreamble);
        Assert.Equal(ExplicitLE, file.DeclaredTransferSyntaxUid);
        Assert.Same(TransferSyntax.ExplicitVRLittleEndian, file.TransferSyntax);
        Assert.Equal("1.2.840.10008.5.1.4.1.1.7", file.FileMetaInformation.GetString(DicomTag.MediaStorageSopClassUid));
        var dataset = file.Dataset;
        Assert.Equal("ORIGINAL", dataset.GetString(DicomTag.ImageType));
        Assert.Equal(["ORIGINAL", "PRIMARY", "AXIAL"], dataset.GetStrings(DicomTag.ImageType));
        Assert.Equal("1.2.3.4.5", dataset.GetString(DicomTag.SopInstanceUid));
        Assert.Equal("Doe^John", dataset.GetString(DicomTag.PatientName));
        // Text VRs keep leading spaces and backslashes; only trailing padding goes.
        Assert.Equal("  first line\\not a separator", dataset.GetString(new DicomTag(0x0020, 0x4000)));
        Assert.Null(dataset.GetString(DicomTag.Modality));
        Assert.Null(file.Truncation);
    }

    [Fact]
    public void Implicit_VR_takes_VRs_from_the_dictionary_and_unknown_tags_as_UN()
    {
        var file = Open(ImplicitLE, new DicomBuilder(explicitVR: false)
            .String(0x0008, 0x0060, "CS", "CT")
            .Element(0x0009, 0x1001, "UN", [1, 2, 3, 4])
            .UInt16(0x0028, 0x0010, 512)
            .String(0x0028, 0x0030, "DS", "0.5\\0.25"));
        var dataset = file.Dataset;
        Assert.Equal("CT", dataset.GetString(DicomTag.Modality));
        Assert.Same(DicomVR.UN, dataset.Find(new DicomTag(0x0009, 0x1001))!.VR);
        Assert.Same(DicomVR.US, dataset.Find(DicomTag.Rows)!.VR);
        Assert.Equal((ushort)512, dataset.GetUInt16(DicomTag.Rows));
        Assert.Equal([0.5, 0.25], dataset.GetDoubles(DicomTag.PixelSpacing));
    }

    [Fact]
    public void Big_endian_numbers_and_16_bit_pixels_come_out_little_endian()
    {
        var file = Open(ExplicitBE, new DicomBuilder(bigEndian: true)
            .ImagePixel(rows: 1, columns: 2, bitsAllocated: 16)
            .Element(0x7FE0, 0x0010, "OW", [0x12, 0x34, 0xAB, 0xCD]));
        var pixels = file.GetPixelData();
        Assert.Equal(1, pixels.Rows);
        Assert.Equal(2, pixels.Columns);
        Assert.Equal(new byte[] { 0x34, 0x12, 0xCD, 0xAB }, pixels.GetFrame(0).ToArray());
    }

    [Fact]
    public void Files_without_preamble_starting_with_group_0008_or_0002_are_read()
    {
        var implicitBody = new DicomBuilder(explicitVR: false).String(0x0008, 0x0060, "CS", "MR").UInt16(0x0028, 0x0010, 7).ToArray();
        var noMeta = DicomFile.Open(implicitBody, "test.dcm");
        Assert.False(noMeta.HasPreamble);
        Assert.Null(noMeta.DeclaredTransferSyntaxUid);
        Assert.Same(TransferSyntax.ImplicitVRLittleEndian, noMeta.TransferSyntax);
        Assert.Equal("MR", noMeta.Dataset.GetString(DicomTag.Modality));

        var bigEndian = DicomFile.Open(new DicomBuilder(bigEndian: true).String(0x0008, 0x0060, "CS", "CT").UInt16(0x0028, 0x0010, 7).ToArray(), "test.dcm");
        Assert.Same(TransferSyntax.ExplicitVRBigEndian, bigEndian.TransferSyntax);
        Assert.Equal((ushort)7, bigEndian.Dataset.GetUInt16(DicomTag.Rows));

        var withPreamble = DicomBuilder.Part10(ExplicitLE, new DicomBuilder().String(0x0008, 0x0060, "CS", "US").ToArray());
        var metaFirst = DicomFile.Open(withPreamble.AsMemory(132), "test.dcm");
        Assert.False(metaFirst.HasPreamble);
        Assert.Equal("US", metaFirst.Dataset.GetString(DicomTag.Modality));
    }

    [Fact]
    public void Anything_else_is_not_DICOM()
    {
        Assert.Contains("not a DICOM file", Refused(() => DicomFile.Open("\x89PNG\r\n\x1a\n0000000000000000"u8.ToArray(), "test.dcm")).Reason);
        Assert.Contains("not a DICOM file", Refused(() => DicomFile.Open(Array.Empty<byte>(), "test.dcm")).Reason);
        var prefixOnly = new byte[132];
        "DICM"u8.CopyTo(prefixOnly.AsSpan(128));
        Assert.Contains("not followed by a file meta group", Refused(() => DicomFile.Open(prefixOnly, "test.dcm")).Reason);
    }

    [Fact]
    public void Undefined_length_sequences_and_items_nest()
    {
        var file = Open(ExplicitLE, new DicomBuilder()
            .String(0x0008, 0x0005, "CS", "ISO_IR 192")
            .Header(0x0008, 0x1140, "SQ", DicomBuilder.Undefined)
            .Item(0xE000, DicomBuilder.Undefined)
            .String(0x0008, 0x1155, "UI", "1.2.3")
            .Header(0x0040, 0xA730, "SQ", DicomBuilder.Undefined)
            .Item(0xE000, 10).String(0x0008, 0x0060, "CS", "SR")
            .Item(0xE0DD, 0)
            .Item(0xE00D, 0)
            .Item(0xE000, 0)
            .Item(0xE0DD, 0)
            .Element(0x0010, 0x0010, "PN", Encoding.UTF8.GetBytes("Ünïcödé ")));
        var dataset = file.Dataset;
        var items = dataset.GetSequence(new DicomTag(0x0008, 0x1140));
        Assert.Equal(2, items.Count);
        Assert.Equal("1.2.3", items[0].GetString(new DicomTag(0x0008, 0x1155)));
        Assert.Same(dataset, items[0].Parent);
        var nested = items[0].GetSequence(new DicomTag(0x0040, 0xA730));
        Assert.Equal("SR", Assert.Single(nested).GetString(DicomTag.Modality));
        Assert.Empty(items[1]);
        // UTF-8 (ISO_IR 192) decodes, and the element after the sequence is where it should be.
        Assert.Equal("Ünïcödé", dataset.GetString(DicomTag.PatientName));
    }

    [Fact]
    public void Explicit_UN_of_undefined_length_is_an_implicit_VR_sequence()
    {
        var item = new DicomBuilder(explicitVR: false).String(0x0008, 0x0060, "CS", "OT").ToArray();
        var file = Open(ExplicitLE, new DicomBuilder()
            .Header(0x0009, 0x1010, "UN", DicomBuilder.Undefined)
            .Item(0xE000, (uint)item.Length).Raw(item)
            .Item(0xE0DD, 0)
            .String(0x0010, 0x0040, "CS", "F"));
        var sequence = file.Dataset.Find(new DicomTag(0x0009, 0x1010))!;
        Assert.Same(DicomVR.SQ, sequence.VR);
        Assert.Equal("OT", Assert.Single(sequence.Items).GetString(DicomTag.Modality));
        Assert.Equal("F", file.Dataset.GetString(DicomTag.PatientSex));
    }

    [Fact]
    public void Deep_nesting_is_refused_quickly()
    {
        var builder = new DicomBuilder();
        for (int i = 0; i < 1000; i++) builder.Header(0x0040, 0xA730, "SQ", DicomBuilder.Undefined).Item(0xE000, DicomBuilder.Undefined);
        for (int i = 0; i < 1000; i++) builder.Item(0xE00D, 0).Item(0xE0DD, 0);
        var clock = Stopwatch.StartNew();
        var e = Refused(() => Open(ExplicitLE, builder));
        Assert.Contains("nests deeper than 32 levels", e.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
    }

    [Fact]
    public void A_length_running_past_its_item_is_a_lie_and_names_the_element()
    {
        var item = new DicomBuilder().String(0x0008, 0x0060, "CS", "CT").ToArray();
        // Rows claims 200 bytes inside an item that holds only the 10 of Modality; the file goes on after the item.
        var lying = new DicomBuilder().Header(0x0028, 0x0010, "US", 200).ToArray();
        var e = Refused(() => Open(ExplicitLE, new DicomBuilder()
            .Header(0x0008, 0x1140, "SQ", (uint)(8 + item.Length + lying.Length))
            .Item(0xE000, (uint)(item.Length + lying.Length)).Raw(item).Raw(lying)
            .String(0x0010, 0x0010, "PN", new string('x', 300))));
        Assert.Contains("element (0028,0010)", e.Reason);
        Assert.Contains("claims 200 bytes but its item has only 0 left", e.Reason);
    }

    [Fact]
    public void A_length_running_past_the_file_is_truncation_the_header_stays_readable()
    {
        var file = Open(ExplicitLE, new DicomBuilder()
            .String(0x0008, 0x0060, "CS", "MR")
            .ImagePixel(rows: 1024, columns: 2048, bitsAllocated: 16)
            .Header(0x7FE0, 0x0010, "OW", 4194304).Raw(new byte[1200]));
        Assert.Equal("element (7FE0,0010) claims 4194304 bytes but only 1200 remain", file.Truncation);
        Assert.Equal("MR", file.Dataset.GetString(DicomTag.Modality));
        var e = Refused(() => file.GetPixelData());
        Assert.Contains("element (7FE0,0010) claims 4194304 bytes but only 1200 remain", e.Reason);
        Assert.True(file.Dataset.Find(DicomTag.PixelData)!.IsTruncated);
    }

    [Fact]
    public void Element_limit_bounds_the_work_per_file()
    {
        var builder = new DicomBuilder();
        for (ushort i = 1; i <= 100; i++) builder.String(0x0009, i, "LO", "x");
        var e = Refused(() => Open(ExplicitLE, builder, DicomReadLimits.Default with { MaxElements = 50 }));
        Assert.Contains("more than 50 elements", e.Reason);
    }

    [Fact]
    public void Deflated_datasets_inflate_within_a_bound()
    {
        var body = new DicomBuilder().String(0x0008, 0x0060, "CS", "OT").String(0x0009, 0x1010, "UT", new string('A', 100_000)).ToArray();
        var deflated = new MemoryStream();
        using (var deflate = new DeflateStream(deflated, CompressionLevel.Optimal, leaveOpen: true)) deflate.Write(body);
        var bytes = DicomBuilder.Part10("1.2.840.10008.1.2.1.99", deflated.ToArray());
        var file = DicomFile.Open(bytes, "test.dcm");
        Assert.True(file.TransferSyntax.IsDeflated);
        Assert.Equal("OT", file.Dataset.GetString(DicomTag.Modality));
        Assert.Equal(100_000, file.Dataset.GetString(new DicomTag(0x0009, 0x1010))!.Length);

        var e = Refused(() => DicomFile.Open(bytes, "test.dcm", DicomReadLimits.Default with { MaxInflatedBytes = 10_000 }));
        Assert.Contains("inflates to more than 10000 bytes", e.Reason);
    }

    [Fact]
    public void Malformed_values_are_refused_by_the_getter_naming_the_tag()
    {
        var dataset = Open(ExplicitLE, new DicomBuilder()
            .String(0x0028, 0x0008, "IS", "1A")
            .String(0x0020, 0x1041, "DS", "NaN")
            .Element(0x0028, 0x0010, "US", [1])).Dataset;
        Assert.Contains("(0028,0008) (IS): '1A' is not an integer", Refused(() => dataset.GetInt(DicomTag.NumberOfFrames)).Reason);
        Assert.Contains("(0020,1041) (DS): 'NaN' is not a decimal number", Refused(() => dataset.GetDouble(DicomTag.SliceLocation)).Reason);
        Assert.Contains("(0028,0010) (US): value has 1 bytes", Refused(() => dataset.GetUInt16(DicomTag.Rows)).Reason);
        Assert.Contains("has VR IS, which does not hold an unsigned 16-bit integer", Refused(() => dataset.GetUInt16(DicomTag.NumberOfFrames)).Reason);
    }

    [Fact]
    public void Unknown_transfer_syntax_keeps_the_header_and_refuses_the_pixels()
    {
        var file = Open("1.2.3.999", new DicomBuilder()
            .String(0x0008, 0x0060, "CS", "CT")
            .ImagePixel(rows: 2, columns: 2)
            .Element(0x7FE0, 0x0010, "OB", new byte[4]));
        Assert.False(file.TransferSyntax.IsKnown);
        Assert.Equal((ushort)2, file.Dataset.GetUInt16(DicomTag.Rows));
        Assert.Contains("transfer syntax 1.2.3.999 is unknown", Refused(() => file.GetPixelData()).Reason);
    }

    [Fact]
    public void Registry_knows_the_common_syntaxes()
    {
        Assert.True(TransferSyntax.Lookup("1.2.840.10008.1.2.1.99").IsDeflated);
        Assert.True(TransferSyntax.Lookup("1.2.840.10008.1.2.2").IsBigEndian);
        Assert.False(TransferSyntax.Lookup("1.2.840.10008.1.2").IsExplicitVR);
        foreach (var uid in new[] { "4.50", "4.51", "4.57", "4.70", "4.80", "4.81", "4.90", "4.91", "4.201", "4.202", "4.203", "5" })
        {
            var syntax = TransferSyntax.Lookup("1.2.840.10008.1.2." + uid);
            Assert.True(syntax.IsKnown && syntax.IsEncapsulated && syntax.IsExplicitVR, uid);
        }
        Assert.True(TransferSyntax.Lookup("1.2.840.10008.1.2.4.50").IsLossy);
        Assert.False(TransferSyntax.Lookup("1.2.840.10008.1.2.4.70").IsLossy);
    }
}
