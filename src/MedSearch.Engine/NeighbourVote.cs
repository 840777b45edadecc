namespace MedSearch.Engine;

/// <summary>One label's share of the neighbours' votes.</summary>
public sealed record LabelVote(string Label, double Score, int Neighbours);

/// <summary>
/// k-NN voting with uniform weights: each labelled neighbour has one vote, split equally among its labels,
/// so the scores of all labels sum to 1. Unlabelled neighbours are evidence to show, not votes: counting them
/// would dilute every label's score by how much of the index happens to be unannotated.
/// </summary>
public static class NeighbourVote
{
    public static (IReadOnlyList<LabelVote> Votes, int Unlabelled) Tally(IReadOnlyList<Neighbour> neighbours)
    {
        var shares = new Dictionary<string, (double Share, int Count)>(StringComparer.Ordinal);
        int labelled = 0, unlabelled = 0;
        foreach (var neighbour in neighbours)
        {
            var labels = neighbour.Case.Labels;
            if (labels.Count == 0) { unlabelled++; continue; }
            labelled++;
            double share = 1.0 / labels.Count;
            foreach (var label in labels)
            {
                var (s, c) = shares.GetValueOrDefault(label);
                shares[label] = (s + share, c + 1);
            }
        }
        var votes = shares
            .Select(p => new LabelVote(p.Key, p.Value.Share / labelled, p.Value.Count))
            .OrderByDescending(v => v.Score).ThenBy(v => v.Label, StringComparer.Ordinal)
            .ToList();
        return (votes, unlabelled);
    }
}
