using System.Buffers.Binary;
using System.Text;

namespace MedSearch.Dicom.Tests;

/// <summary>Writes DICOM byte by byte, including what no conforming writer would: the tests' hostile input.</summary>
public sealed class DicomBuilder(bool explicitVR = true, bool bigEndian = false)
{
    private static readonly HashSet<string> LongHeader = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"];
    private readonly MemoryStream _bytes = new();

    public const uint Undefined = 0xFFFFFFFF;

    public const string SecondaryCapture = "1.2.840.10008.5.1.4.1.1.7";
    public const string SopInstance = "1.2.3.4";

    public byte[] ToArray() => _bytes.ToArray();

    /// <summary>A Part-10 file: preamble, DICM, meta group naming <paramref name="transferSyntax"/>, then <paramref name="dataset"/>.</summary>
    public static byte[] Part10(string transferSyntax, byte[] dataset)
    {
        var meta = new DicomBuilder();
        meta.String(0x0002, 0x0001, "OB", "\0\u0001");
        meta.String(0x0002, 0x0002, "UI", SecondaryCapture);
        meta.String(0x0002, 0x0003, "UI", SopInstance);
        meta.String(0x0002, 0x0010, "UI", transferSyntax);
        var body = meta.ToArray();
        var file = new MemoryStream();
        file.Write(new byte[128]);
        file.Write("DICM"u8);
        var groupLength = new DicomBuilder();
        groupLength.Element(0x0002, 0x0000, "UL", BitConverter.GetBytes((uint)body.Length));
        file.Write(groupLength.ToArray());
        file.Write(body);
        file.Write(dataset);
        return file.ToArray();
    }

    public DicomBuilder Header(ushort group, ushort element, string vr, uint length)
    {
        Write16(group);
        Write16(element);
        if (explicitVR)
        {
            _bytes.Write(Encoding.ASCII.GetBytes(vr));
            if (LongHeader.Contains(vr))
            {
                Write16(0);
                Write32(length);
            }
            else
            {
                Write16((ushort)length);
            }
        }
        else
        {
            Write32(length);
        }
        return this;
    }

    public DicomBuilder Element(ushort group, ushort element, string vr, byte[] value)
    {
        Header(group, element, vr, (uint)value.Length);
        _bytes.Write(value);
        return this;
    }

    /// <summary>A string value, padded to even length with a space (NUL for UI) as PS3.5 6.2 requires.</summary>
    public DicomBuilder String(ushort group, ushort element, string vr, string value)
    {
        var bytes = Encoding.Latin1.GetBytes(value);
        if (bytes.Length % 2 == 1) bytes = [.. bytes, vr == "UI" ? (byte)0 : (byte)' '];
        return Element(group, element, vr, bytes);
    }

    public DicomBuilder UInt16(ushort group, ushort element, ushort value)
    {
        var bytes = new byte[2];
        if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
        else BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        return Element(group, element, "US", bytes);
    }

    /// <summary>An item, sequence delimiter or item delimiter header: tag and 32-bit length, no VR in any syntax.</summary>
    public DicomBuilder Item(ushort element, uint length)
    {
        Write16(0xFFFE);
        Write16(element);
        Write32(length);
        return this;
    }

    public DicomBuilder Raw(ReadOnlySpan<byte> bytes)
    {
        _bytes.Write(bytes);
        return this;
    }

    /// <summary>
    /// The identifying attributes conversion tools (DCMTK, GDCM) insist on: SOP class and instance as
    /// <see cref="Part10"/>'s meta group names them, modality, study and series.
    /// </summary>
    public DicomBuilder SopIdentity()
    {
        String(0x0008, 0x0016, "UI", SecondaryCapture);
        String(0x0008, 0x0018, "UI", SopInstance);
        String(0x0008, 0x0060, "CS", "OT");
        String(0x0020, 0x000D, "UI", SopInstance + ".1");
        return String(0x0020, 0x000E, "UI", SopInstance + ".2");
    }

    /// <summary>Native pixel data (7FE0,0010): OB for 8-bit samples, OW above, padded to even length.</summary>
    public DicomBuilder NativePixelData(byte[] samples, int bitsAllocated) =>
        Element(0x7FE0, 0x0010, bitsAllocated <= 8 ? "OB" : "OW", samples.Length % 2 == 0 ? samples : [.. samples, 0]);

    /// <summary>The Image Pixel module for a native image, without the pixel data itself.</summary>
    public DicomBuilder ImagePixel(ushort rows, ushort columns, ushort bitsAllocated = 8, ushort samples = 1, string photometric = "MONOCHROME2",
        int frames = 1, ushort bitsStored = 0, ushort representation = 0, ushort planar = 0)
    {
        UInt16(0x0028, 0x0002, samples);
        String(0x0028, 0x0004, "CS", photometric);
        if (samples > 1) UInt16(0x0028, 0x0006, planar);
        if (frames != 1) String(0x0028, 0x0008, "IS", frames.ToString(System.Globalization.CultureInfo.InvariantCulture));
        UInt16(0x0028, 0x0010, rows);
        UInt16(0x0028, 0x0011, columns);
        var stored = bitsStored == 0 ? bitsAllocated : bitsStored;
        UInt16(0x0028, 0x0100, bitsAllocated);
        UInt16(0x0028, 0x0101, stored);
        UInt16(0x0028, 0x0102, (ushort)(stored - 1));
        UInt16(0x0028, 0x0103, representation);
        return this;
    }

    private void Write16(ushort value)
    {
        Span<byte> bytes = stackalloc byte[2];
        if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
        else BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        _bytes.Write(bytes);
    }

    private void Write32(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        _bytes.Write(bytes);
    }
}
