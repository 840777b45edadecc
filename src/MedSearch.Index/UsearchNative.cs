using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace MedSearch.Index;

/// <summary>
/// The part of USearch's C API (<c>usearch.h</c>, library from the Cloud.Unum.USearch package) this project uses.
/// Called directly rather than through the package's C# binding, which copies every query and result into
/// new arrays, cannot change the search expansion or thread contexts, has no filtered search, exact search or
/// memory report, and reads past short vectors.
/// Every function reports failure through a static message string that must not be freed.
/// </summary>
internal static unsafe partial class UsearchNative
{
    private const string Library = "libusearch_c";

    internal enum MetricKind
    {
        Cosine = 1,
        InnerProduct = 2,
    }

    /// <summary><c>usearch_scalar_kind_t</c>: the element type of stored vectors, or of a vector passed in.</summary>
    internal enum ScalarKind
    {
        F32 = 1,
        F16 = 3,
        I8 = 4,
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

    /// <summary>Bytes held by the graph, the stored (quantised) vectors and the per-thread search contexts.</summary>
    [LibraryImport(Library)]
    internal static partial nuint usearch_memory_usage(IndexHandle index, out nint error);

    /// <summary>The SIMD kernel family USearch picked for this index's metric on this CPU ("skylake", "haswell", "serial"...).</summary>
    [LibraryImport(Library)]
    internal static partial nint usearch_hardware_acceleration(IndexHandle index, out nint error);

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
    internal static partial nuint usearch_remove(IndexHandle index, ulong key, out nint error);

    [LibraryImport(Library)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal static partial bool usearch_contains(IndexHandle index, ulong key, out nint error);

    [LibraryImport(Library)]
    internal static partial nuint usearch_search(IndexHandle index, float* query, ScalarKind kind, nuint count, ulong* keys, float* distances, out nint error);

    /// <summary>
    /// Graph search that only returns keys for which <paramref name="filter"/> returns non-zero. The callback runs
    /// on the calling thread, once per visited node; it must not throw (there is no managed frame to catch it).
    /// </summary>
    [LibraryImport(Library)]
    internal static partial nuint usearch_filtered_search(
        IndexHandle index, float* query, ScalarKind kind, nuint count,
        delegate* unmanaged[Cdecl]<ulong, void*, int> filter, void* state,
        ulong* keys, float* distances, out nint error);

    /// <summary>
    /// Brute-force k nearest rows of <paramref name="dataset"/> for each query; writes row numbers (not keys)
    /// as <paramref name="keys"/>. Writes exactly <paramref name="count"/> results per query, so
    /// <paramref name="count"/> must not exceed the number of rows. The C wrapper ignores <paramref name="threads"/>.
    /// </summary>
    [LibraryImport(Library)]
    internal static partial void usearch_exact_search(
        float* dataset, nuint datasetCount, nuint datasetStride,
        float* queries, nuint queriesCount, nuint queriesStride,
        ScalarKind kind, nuint dimensions, MetricKind metric, nuint count, nuint threads,
        ulong* keys, nuint keysStride, float* distances, nuint distancesStride, out nint error);

    /// <summary>
    /// Exact k-nearest rows by cosine similarity through USearch's own brute-force kernel: an oracle independent of
    /// <see cref="HnswIndex.SearchExact"/>, for tests and for the benchmark's ground truth. Writes, per query, the
    /// row numbers and similarities of its <paramref name="k"/> nearest rows, most similar first.
    /// </summary>
    internal static void ExactSearch(ReadOnlySpan<float> dataset, ReadOnlySpan<float> queries, int dimensions, int k, Span<long> rows, Span<float> similarities)
    {
        int datasetCount = dataset.Length / dimensions;
        int queryCount = queries.Length / dimensions;
        if (k > datasetCount)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k ({k}) exceeds the {datasetCount} rows of the dataset; USearch would write past them");
        if (rows.Length < queryCount * k || similarities.Length < queryCount * k)
            throw new ArgumentException($"the outputs need room for {queryCount} x {k} results");
        nint error;
        fixed (float* d = dataset)
        fixed (float* q = queries)
        fixed (long* r = rows)
        fixed (float* s = similarities)
            usearch_exact_search(d, (nuint)datasetCount, (nuint)(dimensions * sizeof(float)),
                q, (nuint)queryCount, (nuint)(dimensions * sizeof(float)),
                ScalarKind.F32, (nuint)dimensions, MetricKind.Cosine, (nuint)k, 1,
                (ulong*)r, (nuint)(k * sizeof(long)), s, (nuint)(k * sizeof(float)), out error);
        Check(error, "exact search");
        for (int i = 0; i < queryCount * k; i++) similarities[i] = 1f - similarities[i];
    }

    /// <summary>Which SIMD kernels USearch uses for <paramref name="index"/>, for benchmark reports.</summary>
    internal static string HardwareAcceleration(IndexHandle index)
    {
        nint name = usearch_hardware_acceleration(index, out var error);
        Check(error, "hardware acceleration");
        return Marshal.PtrToStringUTF8(name) ?? "unknown";
    }
}
