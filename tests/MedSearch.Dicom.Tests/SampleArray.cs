using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using MedSearch.Dicom.Codecs;
using MedSearch.Tests.Support;

namespace MedSearch.Dicom.Tests;

/// <summary>
/// A whole image as pydicom's pixel_array holds it: frames × rows × columns × samples in C order, little endian,
/// the frame axis dropped for a single frame and the sample axis for one sample, dtype and shape spelled as numpy does.
/// </summary>
public sealed record SampleArray(string DType, string Shape, byte[] Bytes)
{
    public string Md5 => Convert.ToHexStringLower(MD5.HashData(Bytes));

    public int BytesPerSample => DType switch
    {
        "uint8" or "int8" => 1,
        "uint16" or "int16" => 2,
        "uint32" or "int32" => 4,
        _ => throw new NotSupportedException($"dtype {DType} is not an integer type this test reads"),
    };

    public long Count => Bytes.Length / BytesPerSample;

    public long this[long index] => DType switch
    {
        "uint8" => Bytes[index],
        "int8" => (sbyte)Bytes[index],
        "uint16" => BinaryPrimitives.ReadUInt16LittleEndian(Bytes.AsSpan((int)(index * 2))),
        "int16" => BinaryPrimitives.ReadInt16LittleEndian(Bytes.AsSpan((int)(index * 2))),
        "uint32" => BinaryPrimitives.ReadUInt32LittleEndian(Bytes.AsSpan((int)(index * 4))),
        "int32" => BinaryPrimitives.ReadInt32LittleEndian(Bytes.AsSpan((int)(index * 4))),
        _ => throw new NotSupportedException($"dtype {DType} is not an integer type this test reads"),
    };

    /// <summary>Largest and mean absolute difference, sample by sample, from an array of the same shape.</summary>
    public (long Max, double Mean) Difference(SampleArray other)
    {
        if (Shape != other.Shape || Count != other.Count)
            throw new ArgumentException($"shapes differ: {Shape} ({DType}) and {other.Shape} ({other.DType})");
        long max = 0;
        double sum = 0;
        for (long i = 0; i < Count; i++)
        {
            long d = Math.Abs(this[i] - other[i]);
            max = Math.Max(max, d);
            sum += d;
        }
        return (max, sum / Count);
    }

    /// <summary>Every frame through <see cref="FrameDecoders"/> (or the native path), laid out as pydicom does.</summary>
    /// <returns>The array and the photometric interpretation the decoder reports for it.</returns>
    public static (SampleArray Array, string Photometric) Decode(DicomFile file)
    {
        var pixels = file.GetPixelData();
        var decoder = FrameDecoders.ForTransferSyntax(file.TransferSyntax.Uid);
        var format = new FrameFormat(pixels.Rows, pixels.Columns, pixels.SamplesPerPixel, pixels.BitsAllocated,
            pixels.BitsStored, pixels.IsSigned, pixels.PhotometricInterpretation);
        int frameBytes = (int)pixels.FrameBytes;
        var bytes = new byte[(long)frameBytes * pixels.NumberOfFrames];
        string photometric = pixels.PhotometricInterpretation;
        for (int i = 0; i < pixels.NumberOfFrames; i++)
        {
            var frame = bytes.AsSpan(i * frameBytes, frameBytes);
            photometric = decoder is null
                ? pixels.GetNativeFrame(i, frame)
                : decoder.Decode(pixels.GetFrame(i).Span, format, frame);
        }
        var dims = new List<int>();
        if (pixels.NumberOfFrames > 1) dims.Add(pixels.NumberOfFrames);
        dims.Add(pixels.Rows);
        dims.Add(pixels.Columns);
        if (pixels.SamplesPerPixel > 1) dims.Add(pixels.SamplesPerPixel);
        string dtype = (pixels.IsSigned ? "int" : "uint") + (pixels.BytesPerSample * 8).ToString(CultureInfo.InvariantCulture);
        return (new SampleArray(dtype, string.Join('x', dims), bytes), photometric);
    }

    /// <summary>
    /// pydicom's pixel_array for each file, decoded now by pydicom_arrays.py with Debian's pydicom + GDCM (the
    /// oracle's reader); with ToRgb, passed through pydicom's own YBR_FULL → RGB conversion. One Python process for
    /// all files: starting pydicom per file would dominate the test.
    /// </summary>
    /// <returns>Per request, in order: the array, or pydicom's error.</returns>
    public static IReadOnlyList<(SampleArray? Array, string? Error)> FromPydicom(IReadOnlyList<(string Path, bool ToRgb)> requests)
    {
        var result = new (SampleArray?, string?)[requests.Count];
        if (requests.Count == 0) return result;
        using var scratch = new Tool.Scratch();
        var script = Path.Combine(SharedData.RepositoryRoot, "tests", "MedSearch.Dicom.Tests", "pydicom_arrays.py");
        var input = string.Concat(requests.Select(r => r.Path + (r.ToRgb ? "\tRGB" : "") + "\n"));
        var stdout = Tool.Run(Tool.Python, [script, scratch.Directory], input, TimeSpan.FromMinutes(5));
        var answered = new bool[requests.Count];
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            int index = root.GetProperty("index").GetInt32();
            answered[index] = true;
            if (root.TryGetProperty("error", out var error))
            {
                result[index] = (null, error.GetString());
                continue;
            }
            var shape = string.Join('x', root.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()));
            var bytes = File.ReadAllBytes(scratch.File($"{index}.bin"));
            result[index] = (new SampleArray(root.GetProperty("dtype").GetString()!, shape, bytes), null);
        }
        int missing = Array.IndexOf(answered, false);
        if (missing >= 0) throw new InvalidOperationException($"pydicom_arrays.py gave no answer for {requests[missing].Path}");
        return result;
    }
}
