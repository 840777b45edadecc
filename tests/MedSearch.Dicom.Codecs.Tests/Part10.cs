using System.Buffers.Binary;
using System.Text;

namespace MedSearch.Dicom.Codecs.Tests;

/// <summary>
/// Just enough DICOM Part 10 for the tests: writes a single-frame Explicit VR Little Endian secondary capture that
/// the encoders accept, and reads back the image pixel attributes and pixel data (native or encapsulated) of
/// what they wrote. Deliberately independent of MedSearch.Dicom, which these codecs must not depend on.
/// </summary>
internal static class Part10
{
    public const string ExplicitLittleEndian = "1.2.840.10008.1.2.1";
    private const string SecondaryCapture = "1.2.840.10008.5.1.4.1.1.7";
    private const string Instance = "1.2.826.0.1.3680043.8.498.4242.1";
    private const uint PixelDataTag = 0x7FE00010;

    /// <summary>Single frame: Rows, Columns, PixelData and the rest of the Image Pixel module, nothing else an encoder could trip on.</summary>
    public static byte[] Write(TestImage image)
    {
        FrameFormat f = image.Format;
        var meta = new MemoryStream();
        Element(meta, 0x0002, 0x0001, "OB", [0, 1]);
        Element(meta, 0x0002, 0x0002, "UI", Uid(SecondaryCapture));
        Element(meta, 0x0002, 0x0003, "UI", Uid(Instance));
        Element(meta, 0x0002, 0x0010, "UI", Uid(ExplicitLittleEndian));
        Element(meta, 0x0002, 0x0012, "UI", Uid("1.2.826.0.1.3680043.8.498.4242"));

        var file = new MemoryStream();
        file.Write(new byte[128]);
        file.Write("DICM"u8);
        Element(file, 0x0002, 0x0000, "UL", U32((uint)meta.Length));
        meta.WriteTo(file);
        Element(file, 0x0008, 0x0016, "UI", Uid(SecondaryCapture));
        Element(file, 0x0008, 0x0018, "UI", Uid(Instance));
        Element(file, 0x0008, 0x0060, "CS", Text("OT"));
        Element(file, 0x0020, 0x000D, "UI", Uid(Instance + ".2"));
        Element(file, 0x0020, 0x000E, "UI", Uid(Instance + ".3"));
        Element(file, 0x0028, 0x0002, "US", U16(f.SamplesPerPixel));
        Element(file, 0x0028, 0x0004, "CS", Text(f.PhotometricInterpretation));
        if (f.SamplesPerPixel > 1)
            Element(file, 0x0028, 0x0006, "US", U16(0));
        Element(file, 0x0028, 0x0010, "US", U16(f.Rows));
        Element(file, 0x0028, 0x0011, "US", U16(f.Columns));
        Element(file, 0x0028, 0x0100, "US", U16(f.BitsAllocated));
        Element(file, 0x0028, 0x0101, "US", U16(f.BitsStored));
        Element(file, 0x0028, 0x0102, "US", U16(f.BitsStored - 1));
        Element(file, 0x0028, 0x0103, "US", U16(f.Signed ? 1 : 0));
        byte[] pixels = image.Pixels.Length % 2 == 0 ? image.Pixels : [.. image.Pixels, 0];
        Element(file, 0x7FE0, 0x0010, f.BitsAllocated == 8 ? "OB" : "OW", pixels);
        return file.ToArray();
    }

    /// <summary>What a test needs from an encoder's output file.</summary>
    public sealed record Image(string TransferSyntax, FrameFormat Format, byte[] Frame);

    public static Image Read(byte[] file)
    {
        if (file.Length < 132 || !file.AsSpan(128, 4).SequenceEqual("DICM"u8))
            throw new InvalidDataException("Not a DICOM Part 10 file.");
        var values = new Dictionary<uint, byte[]>();
        byte[]? frame = null;
        int p = 132;
        while (p + 8 <= file.Length)
        {
            uint tag = ReadTag(file, p);
            string vr = Encoding.ASCII.GetString(file, p + 4, 2);
            long length;
            int header;
            if (vr is "OB" or "OW" or "OF" or "OD" or "OL" or "OV" or "SQ" or "UC" or "UR" or "UT" or "UN" or "SV" or "UV")
            {
                length = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p + 8));
                header = 12;
            }
            else
            {
                length = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(p + 6));
                header = 8;
            }
            p += header;
            if (length == 0xFFFFFFFF)
            {
                if (tag == PixelDataTag)
                {
                    frame = ReadFragments(file, ref p);
                    continue;
                }
                SkipUndefined(file, ref p);
                continue;
            }
            if (tag == PixelDataTag)
                frame = file.AsSpan(p, (int)length).ToArray();
            else
                values[tag] = file.AsSpan(p, (int)length).ToArray();
            p += (int)length;
        }

        string ts = Str(values, 0x00020010);
        var format = new FrameFormat(Us(values, 0x00280010), Us(values, 0x00280011), Us(values, 0x00280002),
            Us(values, 0x00280100), Us(values, 0x00280101), Us(values, 0x00280103) == 1, Str(values, 0x00280004));
        return new Image(ts, format, frame ?? throw new InvalidDataException("No PixelData."));
    }

    /// <summary>All fragments after the basic offset table, joined: the single frame.</summary>
    private static byte[] ReadFragments(byte[] file, ref int p)
    {
        var frame = new MemoryStream();
        bool first = true;
        while (true)
        {
            uint tag = ReadTag(file, p);
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p + 4));
            p += 8;
            if (tag == 0xFFFEE0DD)
                return frame.ToArray();
            if (tag != 0xFFFEE000)
                throw new InvalidDataException($"Unexpected tag {tag:X8} among pixel data fragments.");
            if (!first)
                frame.Write(file, p, length);
            first = false;
            p += length;
        }
    }

    /// <summary>Skips a sequence of undefined length (items themselves of defined or undefined length).</summary>
    private static void SkipUndefined(byte[] file, ref int p)
    {
        int depth = 1;
        while (depth > 0)
        {
            uint tag = ReadTag(file, p);
            if (tag is 0xFFFEE0DD or 0xFFFEE00D)
            {
                depth--;
                p += 8;
            }
            else if (tag == 0xFFFEE000)
            {
                uint itemLength = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p + 4));
                p += 8;
                if (itemLength == 0xFFFFFFFF)
                    depth++;
                else
                    p += (int)itemLength;
            }
            else
            {
                string vr = Encoding.ASCII.GetString(file, p + 4, 2);
                bool longForm = vr is "OB" or "OW" or "OF" or "OD" or "OL" or "OV" or "SQ" or "UC" or "UR" or "UT" or "UN" or "SV" or "UV";
                long length = longForm ? BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(p + 8)) : BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(p + 6));
                p += longForm ? 12 : 8;
                if (length == 0xFFFFFFFF)
                    depth++;
                else
                    p += (int)length;
            }
        }
    }

    private static uint ReadTag(byte[] file, int p) =>
        (uint)BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(p)) << 16 | BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(p + 2));

    private static int Us(Dictionary<uint, byte[]> values, uint tag) => BinaryPrimitives.ReadUInt16LittleEndian(values[tag]);

    private static string Str(Dictionary<uint, byte[]> values, uint tag) => Encoding.ASCII.GetString(values[tag]).TrimEnd('\0', ' ');

    private static void Element(Stream s, ushort group, ushort element, string vr, byte[] value)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(header, group);
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], element);
        header[4] = (byte)vr[0];
        header[5] = (byte)vr[1];
        if (vr is "OB" or "OW")
        {
            header[6] = header[7] = 0;
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)value.Length);
            s.Write(header);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header[6..], (ushort)value.Length);
            s.Write(header[..8]);
        }
        s.Write(value);
    }

    private static byte[] Uid(string uid) => Encoding.ASCII.GetBytes(uid.Length % 2 == 0 ? uid : uid + "\0");

    private static byte[] Text(string text) => Encoding.ASCII.GetBytes(text.Length % 2 == 0 ? text : text + " ");

    private static byte[] U16(int value) => BitConverter.GetBytes((ushort)value);

    private static byte[] U32(uint value) => BitConverter.GetBytes(value);
}
