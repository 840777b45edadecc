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

    /// <summary>
    /// Multi-label k-NN classification: each label's score is the weighted share of the labelled neighbours that
    /// carry it (labels are scored independently, so scores need not sum to 1), decided at the label's operating
    /// point. Labels that have an operating point but no neighbour are reported with score 0.
    /// </summary>
    public static IReadOnlyList<LabelDecision> Classify(IReadOnlyList<Neighbour> neighbours, Weighting weighting, double temperature,
        OperatingPoints operatingPoints)
    {
        if (weighting == Weighting.Softmax && !(temperature > 0 && double.IsFinite(temperature)))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, $"temperature must be a positive number, got {temperature}");
        // Softmax weights are shifted by the best similarity: the ratios are unchanged and exp cannot overflow.
        double best = neighbours.Count > 0 ? neighbours.Max(n => (double)n.Similarity) : 0;
        double Weight(Neighbour n) => weighting switch
        {
            Weighting.Uniform => 1,
            Weighting.Similarity => Math.Max(n.Similarity, 0),
            _ => Math.Exp((n.Similarity - best) / temperature),
        };

        var sums = new Dictionary<string, (double Weight, int Count)>(StringComparer.Ordinal);
        double total = 0;
        foreach (var neighbour in neighbours)
        {
            if (neighbour.Case.Labels.Count == 0) continue;
            double w = Weight(neighbour);
            total += w;
            foreach (var label in neighbour.Case.Labels.Distinct(StringComparer.Ordinal))
            {
                var (sum, count) = sums.GetValueOrDefault(label);
                sums[label] = (sum + w, count + 1);
            }
        }
        foreach (var label in operatingPoints.Labels.Keys) sums.TryAdd(label, (0, 0));
        return sums
            .Select(p =>
            {
                double score = total > 0 ? p.Value.Weight / total : 0;
                var point = operatingPoints.For(p.Key);
                return new LabelDecision(p.Key, score, point.Threshold, score >= point.Threshold, p.Value.Count, point.Name);
            })
            .OrderByDescending(d => d.Score).ThenBy(d => d.Label, StringComparer.Ordinal)
            .ToList();
    }
}
