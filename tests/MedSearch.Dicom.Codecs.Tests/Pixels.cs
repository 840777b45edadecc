using Xunit;

namespace MedSearch.Dicom.Codecs.Tests;

/// <summary>Decoding through the registry and comparing samples.</summary>
internal static class Pixels
{
    public sealed record Decoded(byte[] Bytes, string Photometric, FrameFormat Format)
    {
        public int Get(int index) => TestImage.Get(Bytes, Format, index);
    }

    /// <summary>Decodes the encoder's frame with the decoder the registry picks, told what the encoder's dataset says.</summary>
    public static Decoded Decode(Part10.Image encoded)
    {
        IFrameDecoder decoder = FrameDecoders.ForTransferSyntax(encoded.TransferSyntax)
            ?? throw new InvalidOperationException($"The encoder left transfer syntax {encoded.TransferSyntax} uncompressed.");
        return Decode(decoder, encoded.Frame, encoded.Format);
    }

    public static Decoded Decode(IFrameDecoder decoder, byte[] frame, FrameFormat format)
    {
        var destination = new byte[format.FrameBytes];
        string photometric = decoder.Decode(frame, format, destination);
        return new Decoded(destination, photometric, format);
    }

    public static void AssertIdentical(TestImage expected, Decoded actual)
    {
        Assert.Equal(expected.Format.FrameBytes, actual.Bytes.Length);
        for (int i = 0; i < expected.Count; i++)
        {
            if (expected.Get(i) != actual.Get(i))
            {
                FrameFormat f = expected.Format;
                int pixel = i / f.SamplesPerPixel;
                Assert.Fail($"Sample {i % f.SamplesPerPixel} of pixel ({pixel % f.Columns}, {pixel / f.Columns}): expected {expected.Get(i)}, decoded {actual.Get(i)}.");
            }
        }
    }

    public static int MaxAbsoluteError(TestImage expected, Decoded actual) => MaxAbsoluteError(expected, actual.Get);

    public static int MaxAbsoluteError(TestImage expected, Func<int, int> actual)
    {
        int worst = 0;
        for (int i = 0; i < expected.Count; i++)
            worst = Math.Max(worst, Math.Abs(expected.Get(i) - actual(i)));
        return worst;
    }

    /// <summary>Peak signal-to-noise ratio in dB against the full range of BitsStored.</summary>
    public static double Psnr(TestImage expected, Decoded actual)
    {
        double sum = 0;
        for (int i = 0; i < expected.Count; i++)
        {
            double d = expected.Get(i) - actual.Get(i);
            sum += d * d;
        }
        double mse = sum / expected.Count;
        double peak = expected.Max - (double)expected.Min;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(peak * peak / mse);
    }
}
