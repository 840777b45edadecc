using System.Buffers;
using MedSearch.Dicom;
using MedSearch.Dicom.Codecs;

namespace MedSearch.Imaging.Dicom;

/// <summary>
/// DICOM bytes → frames through the codec of the transfer syntax (or the native path), then the pixel pipeline.
/// Every reader and codec error becomes an <see cref="ImageDecodeException"/> naming the file and the reason.
/// </summary>
internal static class DicomImageReader
{
    public static ImageFrames Open(ReadOnlyMemory<byte> bytes, string source, ImageReadOptions options)
    {
        try
        {
            var file = DicomFile.Open(bytes, source, options.Limits);
            var dataset = file.Dataset;
            if (!dataset.Contains(DicomTag.PixelData))
            {
                var sopClass = dataset.GetString(DicomTag.SopClassUid) ?? file.FileMetaInformation.GetString(DicomTag.MediaStorageSopClassUid) ?? "unknown";
                throw new NotAnImageException(source, $"DICOM file without pixel data (SOP class {sopClass})");
            }
            var metadata = InstanceMetadata.From(dataset, options.PatientHasher ?? EphemeralHasher.Value);
            var pixels = file.GetPixelData();
            var decoder = FrameDecoders.ForTransferSyntax(file.TransferSyntax.Uid);
            var format = new FrameFormat(pixels.Rows, pixels.Columns, pixels.SamplesPerPixel, pixels.BitsAllocated,
                pixels.BitsStored, pixels.IsSigned, pixels.PhotometricInterpretation);
            var perFrame = dataset.GetSequence(DicomTag.PerFrameFunctionalGroupsSequence);
            var instance = new PixelPipeline.Instance(dataset, pixels);
            return new ImageFrames(ImageFormat.Dicom, metadata, Select(pixels.NumberOfFrames, options.Frames),
                index => DecodeFrame(source, index, pixels, decoder, format, index < perFrame.Count ? perFrame[index] : null, instance));
        }
        catch (DicomException e)
        {
            throw new ImageDecodeException(source, e.Reason, e);
        }
        catch (CodecException e)
        {
            // A compressed transfer syntax no decoder here reads is known from the header, before any frame.
            throw new ImageDecodeException(source, e.Message, e);
        }
    }

    private static DecodedFrame DecodeFrame(string source, int index, DicomPixelData pixels, IFrameDecoder? decoder, FrameFormat format,
        DicomDataset? group, PixelPipeline.Instance instance)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)pixels.FrameBytes);
        try
        {
            var samples = buffer.AsSpan(0, (int)pixels.FrameBytes);
            string photometric = decoder is null
                ? pixels.GetNativeFrame(index, samples)
                : decoder.Decode(pixels.GetFrame(index).Span, format, samples);
            return new DecodedFrame(index, PixelPipeline.Render(instance, samples, photometric, group));
        }
        catch (DicomException e)
        {
            throw new ImageDecodeException(source, e.Reason, e);
        }
        catch (CodecException e)
        {
            throw new ImageDecodeException(source, e.Message, e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static int[] Select(int frames, FrameSelection selection) => selection switch
    {
        FrameSelection.First => [0],
        FrameSelection.All => Enumerable.Range(0, frames).ToArray(),
        _ => [frames / 2],
    };

    /// <summary>For reads without a collection (no key): a hash nobody can link to anything else.</summary>
    private static readonly Lazy<PatientHasher> EphemeralHasher = new(() =>
        new PatientHasher(System.Security.Cryptography.RandomNumberGenerator.GetBytes(PatientHasher.KeyBytes)));
}
