using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace MedSearch.Index;

/// <summary>
/// The part of USearch's C API (<c>usearch.h</c>, library from the Cloud.Unum.USearch package) this project uses.
/// Called directly rather than through the package's C# binding, which copies every query and result into
/// new arrays, cannot change the search expansion or thread contexts, and reads past short vectors.
/// Every function reports failure through a static message string that must not be freed.
/// </summary>
internal static unsafe partial class UsearchNative
{
    private const string Library = "libusearch_c";

    internal enum MetricKind
    {
        Cosine = 1,
    }

    internal enum ScalarKind
    {
        F32 = 1,
    }

    /// <summary><c>usearch_init_options_t</c>; <c>bool multi</c> is one byte in C.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct InitOptions
    {
        public MetricKind Metric;
        public nint CustomMetric;
        public ScalarKind Quantization;
        public nuint Dimensions;
        public nuint Connectivity;
        public nuint ExpansionAdd;
        public nuint ExpansionSearch;
        public byte Multi;
    }

    internal sealed class IndexHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public IndexHandle() : base(ownsHandle: true) { }

        protected override bool ReleaseHandle()
        {
            usearch_free(handle, out _);
            return true;
        }
    }

    /// <summary>Throws when a call reported an error, naming the operation and USearch's message.</summary>
    internal static void Check(nint error, string operation)
    {
        if (error != 0) throw new InvalidOperationException($"USearch {operation} failed: {Message(error)}");
    }

    internal static string Message(nint error) => Marshal.PtrToStringUTF8(error) ?? "unknown error";

    [LibraryImport(Library)]
    internal static partial IndexHandle usearch_init(ref InitOptions options, out nint error);

    [LibraryImport(Library)]
    private static partial void usearch_free(nint index, out nint error);

    [LibraryImport(Library)]
    internal static partial nuint usearch_serialized_length(IndexHandle index, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_save_buffer(IndexHandle index, byte* buffer, nuint length, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_load_buffer(IndexHandle index, byte* buffer, nuint length, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_metadata_buffer(byte* buffer, nuint length, ref InitOptions options, out nint error);

    [LibraryImport(Library)]
    internal static partial nuint usearch_size(IndexHandle index, out nint error);

    [LibraryImport(Library)]
    internal static partial nuint usearch_capacity(IndexHandle index, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_reserve(IndexHandle index, nuint capacity, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_change_expansion_add(IndexHandle index, nuint expansion, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_change_expansion_search(IndexHandle index, nuint expansion, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_change_threads_add(IndexHandle index, nuint threads, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_change_threads_search(IndexHandle index, nuint threads, out nint error);

    [LibraryImport(Library)]
    internal static partial void usearch_add(IndexHandle index, ulong key, float* vector, ScalarKind kind, out nint error);

    [LibraryImport(Library)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool usearch_contains(IndexHandle index, ulong key, out nint error);

    [LibraryImport(Library)]
    internal static partial nuint usearch_remove(IndexHandle index, ulong key, out nint error);

    [LibraryImport(Library)]
    internal static partial nuint usearch_search(IndexHandle index, float* query, ScalarKind kind, nuint count, ulong* keys, float* distances, out nint error);
}
