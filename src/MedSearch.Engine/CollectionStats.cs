using MedSearch.Index;

namespace MedSearch.Engine;

/// <summary>What a collection holds: counts by modality and label, the index's settings and sizes on disk.</summary>
public sealed record CollectionStats(
    long Cases,
    IReadOnlyDictionary<string, long> CasesByModality,
    IReadOnlyDictionary<string, long> CasesByLabel,
    long UnlabelledCases,
    HnswOptions Index,
    long Indexed,
    long IndexMemoryBytes,
    long StoreBytes,
    long IndexBytes,
    long Series,
    long Studies,
    VolumeOptions Volumes)
{
    /// <summary>The modality of cases whose header gave none (PNG/JPEG, or DICOM without Modality).</summary>
    public const string Unknown = "unknown";
}
