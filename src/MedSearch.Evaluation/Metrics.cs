namespace MedSearch.Evaluation;

/// <summary>A query's score for one label and whether it truly carries that label.</summary>
public readonly record struct ScoredQuery(double Score, bool Positive);

/// <summary>
/// Binary classification metrics of scores against truth. A case is called positive when its score is at or above
/// the threshold, as Classify decides (<see cref="MedSearch.Engine.NeighbourVote.Classify"/>).
/// </summary>
public static class Metrics
{
    /// <summary>
    /// The ROC curve: one point per distinct score (scores tie a lot in k-NN voting: a uniform vote over k
    /// neighbours has only k + 1 values), from (0, 0) at threshold +∞ to (1, 1). Empty when either class is absent.
    /// </summary>
    public static IReadOnlyList<RocPoint> Roc(IReadOnlyList<ScoredQuery> cases)
    {
        var (positives, negatives) = Count(cases);
        if (positives == 0 || negatives == 0) return [];
        var sorted = cases.OrderByDescending(c => c.Score).ToArray();
        var points = new List<RocPoint> { new(double.PositiveInfinity, 0, 0) };
        int tp = 0, fp = 0;
        for (int i = 0; i < sorted.Length; i++)
        {
            if (sorted[i].Positive) tp++; else fp++;
            if (i + 1 < sorted.Length && sorted[i + 1].Score == sorted[i].Score) continue;
            points.Add(new RocPoint(sorted[i].Score, (double)fp / negatives, (double)tp / positives));
        }
        return points;
    }

    /// <summary>
    /// Area under the ROC curve by the trapezoid rule over <see cref="Roc"/>, which counts a tied positive/negative
    /// pair as half: the Mann–Whitney statistic, and what scikit-learn's roc_auc_score computes. Null when either
    /// class is absent.
    /// </summary>
    public static double? Auc(IReadOnlyList<ScoredQuery> cases)
    {
        var roc = Roc(cases);
        if (roc.Count == 0) return null;
        double area = 0;
        for (int i = 1; i < roc.Count; i++)
            area += (roc[i].FalsePositiveRate - roc[i - 1].FalsePositiveRate) * (roc[i].TruePositiveRate + roc[i - 1].TruePositiveRate) / 2;
        return area;
    }

    /// <summary>
    /// Percentile bootstrap 95% interval of the AUC: <paramref name="samples"/> resamples of the cases with
    /// replacement, from a fixed <paramref name="seed"/> so that a report can be reproduced to the last digit.
    /// Resamples that lack a class have no AUC and are drawn again. Null when the cases themselves lack a class.
    /// </summary>
    public static Interval? AucInterval(IReadOnlyList<ScoredQuery> cases, int samples, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 1);
        if (Auc(cases) is null) return null;
        var random = new Random(seed);
        var aucs = new double[samples];
        var resample = new ScoredQuery[cases.Count];
        for (int s = 0; s < samples;)
        {
            for (int i = 0; i < resample.Length; i++) resample[i] = cases[random.Next(cases.Count)];
            if (Auc(resample) is { } auc) aucs[s++] = auc;
        }
        Array.Sort(aucs);
        return new Interval(Percentile(aucs, 0.025), Percentile(aucs, 0.975));
    }

    /// <summary>Linear interpolation between order statistics (NumPy's default), of sorted values.</summary>
    private static double Percentile(double[] sorted, double p)
    {
        double at = p * (sorted.Length - 1);
        int below = (int)Math.Floor(at);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (sorted[above] - sorted[below]) * (at - below);
    }

    public static Confusion At(IReadOnlyList<ScoredQuery> cases, double threshold)
    {
        int tp = 0, fp = 0, tn = 0, fn = 0;
        foreach (var c in cases)
        {
            bool called = c.Score >= threshold;
            if (c.Positive) { if (called) tp++; else fn++; }
            else if (called) fp++;
            else tn++;
        }
        return new Confusion(threshold, tp, fp, tn, fn);
    }

    /// <summary>
    /// The highest threshold whose sensitivity is at least <paramref name="target"/>: the most specific way to
    /// reach it. Null when the cases have no positive.
    /// </summary>
    public static double? ThresholdForSensitivity(IReadOnlyList<ScoredQuery> cases, double target)
    {
        CheckTarget(target, "sensitivity");
        var (positives, _) = Count(cases);
        if (positives == 0) return null;
        // Sensitivity rises as the threshold falls; the first distinct score reaching the target is the highest
        // threshold. Walked directly rather than over Roc, which is empty when the cases lack negatives.
        var sorted = cases.OrderByDescending(c => c.Score).ToArray();
        int tp = 0;
        for (int i = 0; i < sorted.Length; i++)
        {
            if (sorted[i].Positive) tp++;
            if (i + 1 < sorted.Length && sorted[i + 1].Score == sorted[i].Score) continue;
            if ((double)tp / positives >= target) return sorted[i].Score;
        }
        throw new InvalidOperationException("unreachable: sensitivity is 1 at the lowest score");
    }

    /// <summary>
    /// The lowest threshold whose specificity is at least <paramref name="target"/>: the most sensitive way to
    /// reach it; when no score reaches it, a threshold just above every score, which calls nothing positive.
    /// Null when the cases have no negative.
    /// </summary>
    public static double? ThresholdForSpecificity(IReadOnlyList<ScoredQuery> cases, double target)
    {
        CheckTarget(target, "specificity");
        var (_, negatives) = Count(cases);
        if (negatives == 0) return null;
        // Specificity falls as the threshold falls; keep the last distinct score still meeting the target.
        // Walked directly rather than over Roc, which is empty when the cases lack positives.
        var sorted = cases.OrderByDescending(c => c.Score).ToArray();
        double? best = null;
        int fp = 0;
        for (int i = 0; i < sorted.Length; i++)
        {
            if (!sorted[i].Positive) fp++;
            if (i + 1 < sorted.Length && sorted[i + 1].Score == sorted[i].Score) continue;
            // As Confusion computes it (TN / negatives), so the report shows at least the target at this threshold.
            if ((double)(negatives - fp) / negatives >= target) best = sorted[i].Score;
            else break;
        }
        return best ?? double.BitIncrement(sorted[0].Score);
    }

    private static void CheckTarget(double target, string what)
    {
        if (!(target is > 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(target), target, $"target {what} must be above 0 and at most 1, got {target}");
    }

    private static (int Positives, int Negatives) Count(IReadOnlyList<ScoredQuery> cases)
    {
        int positives = 0;
        foreach (var c in cases) if (c.Positive) positives++;
        return (positives, cases.Count - positives);
    }

    /// <summary>Share of the retrieved neighbours that are relevant; null for an empty list.</summary>
    public static double? PrecisionAtK(ReadOnlySpan<bool> relevant)
    {
        if (relevant.Length == 0) return null;
        int hits = 0;
        foreach (var r in relevant) if (r) hits++;
        return (double)hits / relevant.Length;
    }

    /// <summary>
    /// Average precision of a ranked list cut at k: the precision at each relevant rank, summed and divided by the
    /// most relevant cases the list could hold, min(k, <paramref name="relevantInReference"/>) — so a list is not
    /// rewarded for being short, and a query whose label is rare is not held to more hits than exist.
    /// Null when nothing relevant exists.
    /// </summary>
    public static double? AveragePrecision(ReadOnlySpan<bool> relevant, int k, long relevantInReference)
    {
        long possible = Math.Min(k, relevantInReference);
        if (possible <= 0) return null;
        double sum = 0;
        int hits = 0;
        for (int i = 0; i < relevant.Length; i++)
        {
            if (!relevant[i]) continue;
            hits++;
            sum += (double)hits / (i + 1);
        }
        return sum / possible;
    }
}
