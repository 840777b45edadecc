using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// A stored case (or series or study) found near a query; <see cref="Rank"/> starts at 1. For a volume query,
/// <see cref="BestSlices"/> is the hit's slice and the query's slice that look most alike. An instance's
/// <see cref="Case"/> comes without its embedding, which no caller of a search needs, and without its thumbnail unless
/// <see cref="SearchOptions.WithThumbnails"/> (see CaseStore.ReadHitsAsync).
/// </summary>
public sealed record Neighbour(int Rank, float Similarity, CaseRecord Case, SlicePair? BestSlices = null);

/// <summary>The pair of slices, one of the query and one of the hit, with the highest slice-to-slice similarity.</summary>
public sealed record SlicePair(string QuerySlice, byte[] QueryThumbnail, string HitSliceKey, byte[] HitThumbnail, float Similarity);

/// <param name="Missing">Parts of the case space that did not answer in time; their cases may be missing from the neighbours.</param>
public sealed record SearchResult(
    IReadOnlyList<Neighbour> Neighbours,
    IReadOnlyList<LabelVote> Votes,
    int UnlabelledNeighbours,
    string ModelId,
    IReadOnlyList<string>? Missing = null)
{
    /// <summary>Some part of the case space did not answer in time (see <see cref="Missing"/>).</summary>
    public bool Partial => Missing is { Count: > 0 };
}
