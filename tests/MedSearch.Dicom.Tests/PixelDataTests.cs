using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Xunit;

namespace MedSearch.Dicom.Tests;

/// <summary>Pixel data at the container level: geometry limits, native frame forms, and grouping fragments into frames.</summary>
public sealed class PixelDataTests
{
    private const string ExplicitLE = "1.2.840.10008.1.2.1";
    private const string JpegBaseline = "1.2.840.10008.1.2.4.50";

    private static DicomFile Open(string transferSyntax, DicomBuilder dataset) =>
        DicomFile.Open(DicomBuilder.Part10(transferSyntax, dataset.ToArray()), "test.dcm");

    private static DicomException Refused(Action read) => Assert.Throws<DicomException>(read);

    [Theory]
    [InlineData(ExplicitLE)]
    [InlineData(JpegBaseline)]
    public void Absurd_geometry_is_refused_before_anything_is_allocated(string transferSyntax)
    {
        var builder = new DicomBuilder().ImagePixel(rows: 65535, columns: 65535, frames: 10000);
        if (transferSyntax == ExplicitLE) builder.Element(0x7FE0, 0x0010, "OB", new byte[16]);
        else builder.Header(0x7FE0, 0x0010, "OB", DicomBuilder.Undefined).Item(0xE000, 0).Item(0xE000, 4).Raw([0xFF, 0xD8, 0xFF, 0xD9]).Item(0xE0DD, 0);
        var file = Open(transferSyntax, builder);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var e = Refused(() => file.GetPixelData());
        Assert.Contains("65535×65535×10000×1", e.Reason);
        Assert.Contains("exceeds the limit", e.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "refusing must not allocate the image");
    }

    [Fact]
    public void Short_pixel_data_is_refused_with_both_sizes()
    {
        var file = Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 4, columns: 4, bitsAllocated: 16).Element(0x7FE0, 0x0010, "OW", new byte[30]));
        var e = Refused(() => file.GetPixelData());
        Assert.Equal("pixel data holds 30 bytes, Rows×Columns×Frames×Samples×Bits = 4×4×1×1×16 needs 32", e.Reason);
    }

    [Theory]
    [InlineData(9)]
    [InlineData(10)]
    public void Odd_length_pixel_data_reads_with_or_without_its_pad_byte(int stored)
    {
        var file = Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 3, columns: 3)
            .Element(0x7FE0, 0x0010, "OB", [.. Enumerable.Range(1, stored).Select(i => (byte)i)]));
        Assert.Equal(Enumerable.Range(1, 9).Select(i => (byte)i), file.GetPixelData().GetFrame(0).ToArray());
    }

    [Fact]
    public void Native_little_endian_frames_are_slices_of_the_file_not_copies()
    {
        var bytes = DicomBuilder.Part10(ExplicitLE, new DicomBuilder().ImagePixel(rows: 2, columns: 2, frames: 2)
            .Element(0x7FE0, 0x0010, "OB", [1, 2, 3, 4, 5, 6, 7, 8]).ToArray());
        var pixels = DicomFile.Open(bytes, "test.dcm").GetPixelData();
        Assert.Equal(2, pixels.NumberOfFrames);
        var second = pixels.GetFrame(1);
        Assert.Equal(new byte[] { 5, 6, 7, 8 }, second.ToArray());
        Assert.True(MemoryMarshal.TryGetArray(second, out var segment) && ReferenceEquals(segment.Array, bytes));
    }

    [Fact]
    public void Planar_configuration_1_comes_out_interleaved()
    {
        var file = Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 1, columns: 2, samples: 3, photometric: "RGB", planar: 1)
            .Element(0x7FE0, 0x0010, "OB", [10, 11, 20, 21, 30, 31]));
        Assert.Equal(new byte[] { 10, 20, 30, 11, 21, 31 }, file.GetPixelData().GetFrame(0).ToArray());
    }

    [Fact]
    public void One_bit_pixels_unpack_to_bytes_across_frames_that_split_a_byte()
    {
        // Two 3×3 frames: 18 bits, little-endian bit order; frame 1 starts at bit 9.
        var bits = new bool[] { true, false, true, true, false, false, false, false, true, /* frame 1 */ false, true, true, false, false, false, false, true, true };
        var packed = new byte[4];
        for (int i = 0; i < bits.Length; i++) if (bits[i]) packed[i / 8] |= (byte)(1 << (i % 8));
        var pixels = Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 3, columns: 3, bitsAllocated: 1, frames: 2)
            .Element(0x7FE0, 0x0010, "OB", packed)).GetPixelData();
        Assert.Equal(9, pixels.FrameBytes);
        Assert.Equal(bits[..9].Select(b => b ? (byte)1 : (byte)0), pixels.GetFrame(0).ToArray());
        Assert.Equal(bits[9..].Select(b => b ? (byte)1 : (byte)0), pixels.GetFrame(1).ToArray());
    }

    [Fact]
    public void Native_YBR_FULL_422_is_upsampled_to_YBR_FULL()
    {
        var pixels = Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 1, columns: 2, samples: 3, photometric: "YBR_FULL_422")
            .Element(0x7FE0, 0x0010, "OB", [100, 110, 50, 60])).GetPixelData();
        var frame = new byte[pixels.FrameBytes];
        Assert.Equal("YBR_FULL", pixels.GetNativeFrame(0, frame));
        Assert.Equal(new byte[] { 100, 50, 60, 110, 50, 60 }, frame);
    }

    [Fact]
    public void Stored_values_keep_BitsStored_bits_and_are_sign_extended()
    {
        var raw = new byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(raw, 0xF7FF);    // overlay bits over 2047
        BinaryPrimitives.WriteUInt16LittleEndian(raw.AsSpan(2), 0x0800); // -2048 in 12 bits, not sign-extended
        BinaryPrimitives.WriteUInt16LittleEndian(raw.AsSpan(4), 0xFFFF); // -1
        BinaryPrimitives.WriteUInt16LittleEndian(raw.AsSpan(6), 0x0005);
        var signed = Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 1, columns: 4, bitsAllocated: 16, bitsStored: 12, representation: 1)
            .Element(0x7FE0, 0x0010, "OW", raw)).GetPixelData().GetFrame(0).ToArray();
        Assert.Equal(new short[] { 2047, -2048, -1, 5 }, MemoryMarshal.Cast<byte, short>(signed).ToArray());

        var unsigned = Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 1, columns: 4, bitsAllocated: 16, bitsStored: 12)
            .Element(0x7FE0, 0x0010, "OW", raw)).GetPixelData().GetFrame(0).ToArray();
        Assert.Equal(new ushort[] { 2047, 2048, 4095, 5 }, MemoryMarshal.Cast<byte, ushort>(unsigned).ToArray());
    }

    [Fact]
    public void Eight_bit_samples_in_big_endian_OW_are_swapped_in_pairs()
    {
        var pixels = Open("1.2.840.10008.1.2.2", new DicomBuilder(bigEndian: true).ImagePixel(rows: 1, columns: 3)
            .Element(0x7FE0, 0x0010, "OW", [2, 1, 0, 3])).GetPixelData();
        Assert.Equal(new byte[] { 1, 2, 3 }, pixels.GetFrame(0).ToArray());
    }

    [Fact]
    public void Zero_frames_reads_as_one_like_pydicom()
    {
        var pixels = Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 1, columns: 2, frames: 0).Element(0x7FE0, 0x0010, "OB", [1, 2])).GetPixelData();
        Assert.Equal(1, pixels.NumberOfFrames);
    }

    [Fact]
    public void Invalid_geometry_is_named()
    {
        Assert.Contains("BitsStored 17 is outside 1..BitsAllocated (16)", Refused(() => Open(ExplicitLE,
            new DicomBuilder().ImagePixel(rows: 1, columns: 1, bitsAllocated: 16, bitsStored: 17).Element(0x7FE0, 0x0010, "OW", new byte[2])).GetPixelData()).Reason);
        Assert.Contains("BitsAllocated 12 is not supported", Refused(() => Open(ExplicitLE,
            new DicomBuilder().ImagePixel(rows: 1, columns: 1, bitsAllocated: 12).Element(0x7FE0, 0x0010, "OW", new byte[2])).GetPixelData()).Reason);
        Assert.Contains("no pixel data (7FE0,0010)", Refused(() => Open(ExplicitLE, new DicomBuilder().ImagePixel(rows: 1, columns: 1)).GetPixelData()).Reason);
    }

    private static readonly byte[] Jpeg1 = [0xFF, 0xD8, 1, 1, 0xFF, 0xD9];
    private static readonly byte[] Jpeg2a = [0xFF, 0xD8, 2, 2];
    private static readonly byte[] Jpeg2b = [3, 3, 0xFF, 0xD9];

    private static DicomPixelData Encapsulated(byte[] basicOffsetTable, int frames, DicomBuilder? before = null, params byte[][] fragments)
    {
        var builder = (before ?? new DicomBuilder()).ImagePixel(rows: 8, columns: 8, frames: frames)
            .Header(0x7FE0, 0x0010, "OB", DicomBuilder.Undefined)
            .Item(0xE000, (uint)basicOffsetTable.Length).Raw(basicOffsetTable);
        foreach (var fragment in fragments) builder.Item(0xE000, (uint)fragment.Length).Raw(fragment);
        builder.Item(0xE0DD, 0);
        return Open(JpegBaseline, builder).GetPixelData();
    }

    private static byte[] Offsets32(params uint[] offsets) => [.. offsets.SelectMany(BitConverter.GetBytes)];

    // The tables are put to the test where start markers would group differently: a table says frame 1 is a
    // marker-less fragment followed by one with a marker, which a marker scan would split the other way.

    [Fact]
    public void Basic_offset_table_groups_fragments_into_frames()
    {
        // Item headers are 8 bytes: fragment 0 at 0, fragment 1 at 14, fragment 2 at 26.
        var pixels = Encapsulated(Offsets32(0, 14), 2, null, Jpeg1, Jpeg2b, Jpeg2a);
        Assert.Equal(Jpeg1, pixels.GetFrame(0).ToArray());
        Assert.Equal(Jpeg2b.Concat(Jpeg2a), pixels.GetFrame(1).ToArray());
    }

    [Fact]
    public void Extended_offset_table_is_used_when_the_basic_one_is_empty()
    {
        var extended = new DicomBuilder()
            .Element(0x7FE0, 0x0001, "OV", [.. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes(14UL)])
            .Element(0x7FE0, 0x0002, "OV", [.. BitConverter.GetBytes(6UL), .. BitConverter.GetBytes(8UL)]);
        // The Image Pixel module comes after (7FE0,0001/2) here; order does not matter to the lookup.
        var pixels = Encapsulated([], 2, extended, Jpeg1, Jpeg2b, Jpeg2a);
        Assert.Equal(Jpeg1, pixels.GetFrame(0).ToArray());
        Assert.Equal(Jpeg2b.Concat(Jpeg2a), pixels.GetFrame(1).ToArray());
    }

    [Fact]
    public void Without_tables_one_fragment_per_frame_or_start_markers_decide()
    {
        var onePerFrame = Encapsulated([], 2, null, Jpeg1, [.. Jpeg2a, .. Jpeg2b]);
        Assert.Equal(Jpeg1, onePerFrame.GetFrame(0).ToArray());

        var byMarkers = Encapsulated([], 2, null, Jpeg1, Jpeg2a, Jpeg2b);
        Assert.Equal(Jpeg2a.Concat(Jpeg2b), byMarkers.GetFrame(1).ToArray());

        var single = Encapsulated([], 1, null, Jpeg2a, Jpeg2b);
        Assert.Equal(Jpeg2a.Concat(Jpeg2b), single.GetFrame(0).ToArray());

        // A table that misses every fragment boundary is ignored, not trusted.
        var badTable = Encapsulated(Offsets32(0, 3), 2, null, Jpeg1, Jpeg2a, Jpeg2b);
        Assert.Equal(Jpeg1, badTable.GetFrame(0).ToArray());
    }

    [Fact]
    public void Fragments_that_cannot_be_grouped_are_refused()
    {
        var e = Refused(() => Encapsulated([], 2, null, Jpeg2a, Jpeg2b, Jpeg2b));
        Assert.Contains("cannot group 3 fragments into 2 frames", e.Reason);
        Assert.Contains("NumberOfFrames is 3 but the encapsulated pixel data holds only 2 fragments",
            Refused(() => Encapsulated([], 3, null, Jpeg1, Jpeg1)).Reason);
    }

    [Fact]
    public void Encapsulated_frames_need_a_codec_and_indices_are_checked()
    {
        var pixels = Encapsulated([], 1, null, Jpeg1);
        Assert.True(pixels.IsEncapsulated);
        Assert.Contains("a codec must decode", Refused(() => pixels.GetNativeFrame(0, new byte[pixels.FrameBytes])).Reason);
        Assert.Throws<ArgumentOutOfRangeException>(() => pixels.GetFrame(1));
    }
}
