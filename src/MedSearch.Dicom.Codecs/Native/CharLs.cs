using System.Runtime.InteropServices;

namespace MedSearch.Dicom.Codecs.Native;

/// <summary>The CharLS 2.x C decoder API (charls_jpegls_decoder.h); every call returns a charls_jpegls_errc, 0 on success.</summary>
internal static unsafe partial class CharLs
{
    private const string Library = "libcharls.so.2";

    public const int InterleaveNone = 0;

    [StructLayout(LayoutKind.Sequential)]
    public struct FrameInfo
    {
        public uint Width;
        public uint Height;
        public int BitsPerSample;
        public int ComponentCount;
    }

    [LibraryImport(Library, EntryPoint = "charls_jpegls_decoder_create")]
    public static partial nint DecoderCreate();

    [LibraryImport(Library, EntryPoint = "charls_jpegls_decoder_destroy")]
    public static partial void DecoderDestroy(nint decoder);

    [LibraryImport(Library, EntryPoint = "charls_jpegls_decoder_set_source_buffer")]
    public static partial int SetSourceBuffer(nint decoder, byte* source, nuint sourceBytes);

    [LibraryImport(Library, EntryPoint = "charls_jpegls_decoder_read_header")]
    public static partial int ReadHeader(nint decoder);

    [LibraryImport(Library, EntryPoint = "charls_jpegls_decoder_get_frame_info")]
    public static partial int GetFrameInfo(nint decoder, FrameInfo* frameInfo);

    [LibraryImport(Library, EntryPoint = "charls_jpegls_decoder_get_interleave_mode")]
    public static partial int GetInterleaveMode(nint decoder, int* interleaveMode);

    [LibraryImport(Library, EntryPoint = "charls_jpegls_decoder_get_destination_size")]
    public static partial int GetDestinationSize(nint decoder, uint stride, nuint* destinationBytes);

    [LibraryImport(Library, EntryPoint = "charls_jpegls_decoder_decode_to_buffer")]
    public static partial int DecodeToBuffer(nint decoder, byte* destination, nuint destinationBytes, uint stride);

    /// <returns>A static string owned by CharLS.</returns>
    [LibraryImport(Library, EntryPoint = "charls_get_error_message")]
    public static partial nint GetErrorMessage(int error);
}
