using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>A stored case found near a query; <see cref="Rank"/> starts at 1.</summary>
public sealed record Neighbour(int Rank, float Similarity, CaseRecord Case);

public sealed record SearchResult(
    IReadOnlyList<Neighbour> Neighbours,
    IReadOnlyList<LabelVote> Votes,
    int UnlabelledNeighbours,
    string ModelId);
