using System.Runtime.InteropServices;

namespace MedSearch.Dicom.Codecs.Native;

/// <summary>The OpenJPEG 2.5 decoding API (openjpeg.h). OPJ_BOOL is int, OPJ_OFF_T int64, OPJ_SIZE_T size_t.</summary>
internal static unsafe partial class OpenJpeg
{
    private const string Library = "libopenjp2.so.7";

    public const int CodecJ2K = 0;
    public const int CodecJP2 = 2;

    /// <summary>
    /// sizeof(opj_dparameters_t) is 8252 bytes in 2.5 (two 4096-byte path buffers among the fields); the setter is
    /// given a larger zeroed block so that a build with a bigger struct still writes inside it.
    /// </summary>
    public const int DecoderParametersBytes = 16384;

    /// <summary>opj_image_comp_t: 64 bytes, data at offset 48 (checked against the 2.5 headers).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ImageComponent
    {
        public uint Dx;
        public uint Dy;
        public uint Width;
        public uint Height;
        public uint X0;
        public uint Y0;
        public uint Precision;
        public uint Bpp;
        public uint Signed;
        public uint ResolutionsDecoded;
        public uint Factor;
        public int* Data;
        public ushort Alpha;
    }

    /// <summary>opj_image_t: 48 bytes, comps at offset 24.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Image
    {
        public uint X0;
        public uint Y0;
        public uint X1;
        public uint Y1;
        public uint ComponentCount;
        public int ColorSpace;
        public ImageComponent* Components;
        public byte* IccProfile;
        public uint IccProfileLength;
    }

    [LibraryImport(Library, EntryPoint = "opj_stream_create")]
    public static partial nint StreamCreate(nuint bufferSize, int isInput);

    [LibraryImport(Library, EntryPoint = "opj_stream_set_read_function")]
    public static partial void StreamSetReadFunction(nint stream, delegate* unmanaged<void*, nuint, void*, nuint> read);

    [LibraryImport(Library, EntryPoint = "opj_stream_set_skip_function")]
    public static partial void StreamSetSkipFunction(nint stream, delegate* unmanaged<long, void*, long> skip);

    [LibraryImport(Library, EntryPoint = "opj_stream_set_seek_function")]
    public static partial void StreamSetSeekFunction(nint stream, delegate* unmanaged<long, void*, int> seek);

    [LibraryImport(Library, EntryPoint = "opj_stream_set_user_data")]
    public static partial void StreamSetUserData(nint stream, void* userData, nint freeUserData);

    [LibraryImport(Library, EntryPoint = "opj_stream_set_user_data_length")]
    public static partial void StreamSetUserDataLength(nint stream, ulong length);

    [LibraryImport(Library, EntryPoint = "opj_stream_destroy")]
    public static partial void StreamDestroy(nint stream);

    [LibraryImport(Library, EntryPoint = "opj_create_decompress")]
    public static partial nint CreateDecompress(int format);

    [LibraryImport(Library, EntryPoint = "opj_set_error_handler")]
    public static partial int SetErrorHandler(nint codec, delegate* unmanaged<byte*, void*, void> handler, void* clientData);

    [LibraryImport(Library, EntryPoint = "opj_set_default_decoder_parameters")]
    public static partial void SetDefaultDecoderParameters(byte* parameters);

    [LibraryImport(Library, EntryPoint = "opj_setup_decoder")]
    public static partial int SetupDecoder(nint codec, byte* parameters);

    /// <summary>New in 2.5.0: fail on truncated codestreams instead of decoding what is there.</summary>
    [LibraryImport(Library, EntryPoint = "opj_decoder_set_strict_mode")]
    public static partial int DecoderSetStrictMode(nint codec, int strict);

    /// <summary>Decodes code-blocks on this many threads (OpenJPEG ≥ 2.2 built with thread support; 0 = off).</summary>
    [LibraryImport(Library, EntryPoint = "opj_codec_set_threads")]
    public static partial int CodecSetThreads(nint codec, int threads);

    [LibraryImport(Library, EntryPoint = "opj_read_header")]
    public static partial int ReadHeader(nint stream, nint codec, Image** image);

    [LibraryImport(Library, EntryPoint = "opj_decode")]
    public static partial int Decode(nint codec, nint stream, Image* image);

    [LibraryImport(Library, EntryPoint = "opj_end_decompress")]
    public static partial int EndDecompress(nint codec, nint stream);

    [LibraryImport(Library, EntryPoint = "opj_image_destroy")]
    public static partial void ImageDestroy(Image* image);

    [LibraryImport(Library, EntryPoint = "opj_destroy_codec")]
    public static partial void DestroyCodec(nint codec);
}
