using MedSearch.Evaluation;
using Xunit;

namespace MedSearch.Evaluation.Tests;

public class MetricsTests
{
    // ---- helpers: independent brute-force definitions ----

    /// <summary>Mann–Whitney: share of positive×negative pairs where the positive scores higher, ties counting half.</summary>
    private static double BruteAuc(IReadOnlyList<ScoredQuery> cases)
    {
        double wins = 0;
        long pairs = 0;
        foreach (var p in cases.Where(c => c.Positive))
            foreach (var n in cases.Where(c => !c.Positive))
            {
                pairs++;
                if (p.Score > n.Score) wins += 1;
                else if (p.Score == n.Score) wins += 0.5;
            }
        return wins / pairs;
    }

    private static double Sensitivity(IReadOnlyList<ScoredQuery> cases, double t) =>
        (double)cases.Count(c => c.Positive && c.Score >= t) / cases.Count(c => c.Positive);

    private static double Specificity(IReadOnlyList<ScoredQuery> cases, double t) =>
        (double)cases.Count(c => !c.Positive && c.Score < t) / cases.Count(c => !c.Positive);

    private static ScoredQuery[] Continuous(int seed, int n, double positiveShare = 0.4)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ =>
        {
            bool positive = random.NextDouble() < positiveShare;
            // Overlapping classes: positives shifted up.
            double score = Math.Clamp(random.NextDouble() * 0.8 + (positive ? 0.2 : 0), 0, 1);
            return new ScoredQuery(score, positive);
        }).ToArray();
    }

    /// <summary>Scores from {0, 0.1, ..., 1}: heavy ties.</summary>
    private static ScoredQuery[] Tenths(int seed, int n)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ =>
        {
            bool positive = random.Next(3) == 0;
            int tenth = Math.Clamp(random.Next(11) + (positive ? 2 : -1), 0, 10);
            return new ScoredQuery(tenth / 10.0, positive);
        }).ToArray();
    }

    /// <summary>Uniform k-NN votes: score = (positive neighbours) / k, only k + 1 values.</summary>
    private static ScoredQuery[] KnnVotes(int seed, int n, int k)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ =>
        {
            bool positive = random.NextDouble() < 0.3;
            double p = positive ? 0.6 : 0.25;
            int votes = 0;
            for (int j = 0; j < k; j++) if (random.NextDouble() < p) votes++;
            return new ScoredQuery((double)votes / k, positive);
        }).ToArray();
    }

    public static TheoryData<string, int> Sets() => new()
    {
        { "continuous", 1 }, { "continuous", 2 }, { "continuous", 3 },
        { "tenths", 1 }, { "tenths", 2 }, { "tenths", 3 },
        { "knn5", 1 }, { "knn5", 2 }, { "knn10", 3 }, { "knn3", 4 },
        { "tiny", 5 }, { "tiny", 6 }, { "tiny", 7 },
    };

    private static ScoredQuery[] Make(string kind, int seed) => kind switch
    {
        "continuous" => Continuous(seed, 300),
        "tenths" => Tenths(seed, 250),
        "knn5" => KnnVotes(seed, 200, 5),
        "knn10" => KnnVotes(seed, 400, 10),
        "knn3" => KnnVotes(seed, 60, 3),
        // Small sets make the ends of the curve matter; ensure both classes.
        "tiny" => [.. Tenths(seed, 7), new ScoredQuery(0.5, true), new ScoredQuery(0.5, false)],
        _ => throw new ArgumentException(kind),
    };

    // ---- AUC ----

    [Theory]
    [MemberData(nameof(Sets))]
    public void Auc_equals_brute_force_mann_whitney(string kind, int seed)
    {
        var cases = Make(kind, seed);
        Assert.Equal(BruteAuc(cases), Metrics.Auc(cases)!.Value, 1e-12);
    }

    [Fact]
    public void Auc_of_hand_example_with_ties()
    {
        // Positives 0.9, 0.5; negatives 0.5, 0.1. Pairs: (0.9>0.5)=1, (0.9>0.1)=1, (0.5=0.5)=0.5, (0.5>0.1)=1 → 3.5/4.
        ScoredQuery[] cases = [new(0.9, true), new(0.5, true), new(0.5, false), new(0.1, false)];
        Assert.Equal(0.875, Metrics.Auc(cases)!.Value, 1e-12);
    }

    [Fact]
    public void Auc_is_half_when_every_score_ties_and_zero_when_inverted()
    {
        ScoredQuery[] ties = [new(0.3, true), new(0.3, false), new(0.3, true)];
        Assert.Equal(0.5, Metrics.Auc(ties)!.Value, 1e-12);
        ScoredQuery[] inverted = [new(0.1, true), new(0.2, true), new(0.8, false), new(0.9, false)];
        Assert.Equal(0.0, Metrics.Auc(inverted)!.Value, 1e-12);
    }

    [Fact]
    public void Auc_is_null_when_a_class_is_missing()
    {
        Assert.Null(Metrics.Auc([new(0.2, true), new(0.9, true)]));
        Assert.Null(Metrics.Auc([new(0.2, false), new(0.9, false)]));
        Assert.Null(Metrics.Auc([]));
        Assert.Empty(Metrics.Roc([new(0.2, true)]));
    }

    // ---- ROC ----

    [Theory]
    [MemberData(nameof(Sets))]
    public void Roc_has_one_point_per_distinct_score_with_directly_counted_rates(string kind, int seed)
    {
        var cases = Make(kind, seed);
        var roc = Metrics.Roc(cases);

        Assert.Equal(new RocPoint(double.PositiveInfinity, 0, 0), roc[0]);
        Assert.Equal(1.0, roc[^1].FalsePositiveRate);
        Assert.Equal(1.0, roc[^1].TruePositiveRate);
        for (int i = 1; i < roc.Count; i++) Assert.True(roc[i].Threshold < roc[i - 1].Threshold);

        var distinct = cases.Select(c => c.Score).Distinct().OrderDescending().ToArray();
        Assert.Equal(distinct, roc.Skip(1).Select(p => p.Threshold).ToArray());

        int positives = cases.Count(c => c.Positive), negatives = cases.Length - positives;
        foreach (var point in roc.Skip(1))
        {
            double tpr = (double)cases.Count(c => c.Positive && c.Score >= point.Threshold) / positives;
            double fpr = (double)cases.Count(c => !c.Positive && c.Score >= point.Threshold) / negatives;
            Assert.Equal(tpr, point.TruePositiveRate, 1e-15);
            Assert.Equal(fpr, point.FalsePositiveRate, 1e-15);
        }
    }

    [Fact]
    public void Roc_of_hand_example()
    {
        ScoredQuery[] cases = [new(0.5, false), new(0.9, true), new(0.1, false), new(0.5, true)];
        Assert.Equal(
            [new RocPoint(double.PositiveInfinity, 0, 0), new RocPoint(0.9, 0, 0.5), new RocPoint(0.5, 0.5, 1), new RocPoint(0.1, 1, 1)],
            Metrics.Roc(cases));
    }

    // ---- bootstrap interval ----

    [Fact]
    public void Auc_interval_is_reproducible_for_a_seed_and_contains_the_point_estimate()
    {
        var cases = Continuous(11, 200);
        var a = Metrics.AucInterval(cases, 500, seed: 42)!;
        var b = Metrics.AucInterval(cases, 500, seed: 42)!;
        Assert.Equal(a, b);

        double auc = Metrics.Auc(cases)!.Value;
        Assert.True(a.Lower < auc && auc < a.Upper, $"{a} should contain {auc}");
        Assert.True(a.Lower >= 0 && a.Upper <= 1);
        // 200 cases: the interval is neither degenerate nor absurdly wide.
        Assert.InRange(a.Upper - a.Lower, 0.02, 0.3);

        var other = Metrics.AucInterval(cases, 500, seed: 43)!;
        Assert.NotEqual(a, other);
        Assert.Equal(a.Lower, other.Lower, 0.03);
        Assert.Equal(a.Upper, other.Upper, 0.03);
    }

    [Fact]
    public void Auc_interval_of_perfectly_separated_cases_is_one_one()
    {
        ScoredQuery[] cases = [new(0.9, true), new(0.8, true), new(0.7, true), new(0.3, false), new(0.2, false), new(0.1, false)];
        Assert.Equal(new Interval(1, 1), Metrics.AucInterval(cases, 200, seed: 1));
    }

    [Fact]
    public void Auc_interval_is_null_without_both_classes_and_rejects_no_samples()
    {
        Assert.Null(Metrics.AucInterval([new(0.4, true), new(0.6, true)], 100, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Metrics.AucInterval(Continuous(1, 20), 0, 1));
    }

    // ---- thresholds for a target ----

    private static readonly double[] Targets = [0.01, 0.1, 0.25, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0];

    [Theory]
    [MemberData(nameof(Sets))]
    public void Threshold_for_sensitivity_is_the_highest_score_reaching_the_target(string kind, int seed)
    {
        var cases = Make(kind, seed);
        var scores = cases.Select(c => c.Score).Distinct().ToArray();
        foreach (var target in Targets)
        {
            double expected = scores.Where(t => Sensitivity(cases, t) >= target).Max();
            Assert.Equal(expected, Metrics.ThresholdForSensitivity(cases, target));
            Assert.True(Metrics.At(cases, expected).Sensitivity >= target);
        }
    }

    [Theory]
    [MemberData(nameof(Sets))]
    public void Threshold_for_specificity_is_the_lowest_score_reaching_the_target(string kind, int seed)
    {
        var cases = Make(kind, seed);
        var scores = cases.Select(c => c.Score).Distinct().ToArray();
        foreach (var target in Targets)
        {
            var reaching = scores.Where(t => Specificity(cases, t) >= target).ToArray();
            var actual = Metrics.ThresholdForSpecificity(cases, target)!.Value;
            if (reaching.Length > 0)
                Assert.Equal(reaching.Min(), actual);
            else
            {
                // Nothing reaches it: above every score, so nothing is called positive.
                Assert.True(actual > scores.Max());
                Assert.Equal(0, Metrics.At(cases, actual).TruePositives + Metrics.At(cases, actual).FalsePositives);
            }
            Assert.True(Metrics.At(cases, actual).Specificity >= target);
        }
    }

    [Fact]
    public void Threshold_for_specificity_above_every_score_when_the_top_score_holds_a_negative()
    {
        // A negative at the top score: specificity 1 is only reached by calling nothing positive.
        ScoredQuery[] cases = [new(1.0, false), new(1.0, true), new(0.4, false), new(0.2, true)];
        var t = Metrics.ThresholdForSpecificity(cases, 1.0)!.Value;
        Assert.True(t > 1.0);
        Assert.Equal(double.BitIncrement(1.0), t);
        Assert.Equal(1.0, Metrics.ThresholdForSpecificity(cases, 0.5));
    }

    [Fact]
    public void Thresholds_on_hand_example()
    {
        // Positives 0.9, 0.7, 0.4, 0.2; negatives 0.8, 0.3, 0.1, 0.05.
        ScoredQuery[] cases =
        [
            new(0.9, true), new(0.8, false), new(0.7, true), new(0.4, true),
            new(0.3, false), new(0.2, true), new(0.1, false), new(0.05, false),
        ];
        Assert.Equal(0.9, Metrics.ThresholdForSensitivity(cases, 0.25));
        Assert.Equal(0.7, Metrics.ThresholdForSensitivity(cases, 0.5));
        Assert.Equal(0.4, Metrics.ThresholdForSensitivity(cases, 0.6));
        Assert.Equal(0.2, Metrics.ThresholdForSensitivity(cases, 1.0));
        // Specificity: t=0.9 → 4/4, 0.8 → 3/4, 0.3 → 2/4, 0.1 → 1/4.
        Assert.Equal(0.9, Metrics.ThresholdForSpecificity(cases, 1.0));
        Assert.Equal(0.4, Metrics.ThresholdForSpecificity(cases, 0.75));
        Assert.Equal(0.2, Metrics.ThresholdForSpecificity(cases, 0.5));
        Assert.Equal(0.1, Metrics.ThresholdForSpecificity(cases, 0.25));
    }

    [Fact]
    public void Thresholds_with_one_class_follow_the_same_definition()
    {
        ScoredQuery[] positivesOnly = [new(0.9, true), new(0.6, true), new(0.6, true), new(0.3, true)];
        Assert.Null(Metrics.ThresholdForSpecificity(positivesOnly, 0.9));
        Assert.Equal(0.9, Metrics.ThresholdForSensitivity(positivesOnly, 0.25));
        Assert.Equal(0.6, Metrics.ThresholdForSensitivity(positivesOnly, 0.5));
        Assert.Equal(0.6, Metrics.ThresholdForSensitivity(positivesOnly, 0.75));
        Assert.Equal(0.3, Metrics.ThresholdForSensitivity(positivesOnly, 1.0));

        ScoredQuery[] negativesOnly = [new(0.9, false), new(0.6, false), new(0.3, false), new(0.1, false)];
        Assert.Null(Metrics.ThresholdForSensitivity(negativesOnly, 0.9));
        Assert.Equal(0.6, Metrics.ThresholdForSpecificity(negativesOnly, 0.5));
        Assert.Equal(0.9, Metrics.ThresholdForSpecificity(negativesOnly, 0.75));
        Assert.Equal(double.BitIncrement(0.9), Metrics.ThresholdForSpecificity(negativesOnly, 1.0));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.1)]
    [InlineData(1.0000001)]
    [InlineData(2.0)]
    [InlineData(double.NaN)]
    public void Targets_outside_zero_to_one_throw(double target)
    {
        var cases = Continuous(1, 20);
        Assert.Throws<ArgumentOutOfRangeException>(() => Metrics.ThresholdForSensitivity(cases, target));
        Assert.Throws<ArgumentOutOfRangeException>(() => Metrics.ThresholdForSpecificity(cases, target));
    }

    // ---- confusion ----

    [Fact]
    public void Confusion_counts_by_hand()
    {
        ScoredQuery[] cases =
        [
            new(0.9, true), new(0.6, true), new(0.5, true), new(0.2, true),   // tp tp tp fn (0.5 >= 0.5 is called)
            new(0.8, false), new(0.5, false), new(0.4, false),                 // fp fp tn
        ];
        var c = Metrics.At(cases, 0.5);
        Assert.Equal((0.5, 3, 2, 1, 1), (c.Threshold, c.TruePositives, c.FalsePositives, c.TrueNegatives, c.FalseNegatives));
        Assert.Equal(7, c.Total);
        Assert.Equal(4.0 / 7, c.Accuracy!.Value, 1e-15);
        Assert.Equal(0.75, c.Sensitivity);
        Assert.Equal(1.0 / 3, c.Specificity!.Value, 1e-15);
        Assert.Equal(0.6, c.PositivePredictiveValue!.Value, 1e-15);
        Assert.Equal(0.5, c.NegativePredictiveValue);
    }

    [Fact]
    public void Confusion_rates_are_null_when_their_denominator_is_zero()
    {
        // Only negatives, nothing called positive.
        var c = Metrics.At([new(0.1, false), new(0.2, false)], 0.5);
        Assert.Equal((0, 0, 2, 0), (c.TruePositives, c.FalsePositives, c.TrueNegatives, c.FalseNegatives));
        Assert.Null(c.Sensitivity);
        Assert.Null(c.PositivePredictiveValue);
        Assert.Equal(1.0, c.Specificity);
        Assert.Equal(1.0, c.NegativePredictiveValue);
        Assert.Equal(1.0, c.Accuracy);

        // Only positives, everything called positive.
        var d = Metrics.At([new(0.7, true)], 0.5);
        Assert.Null(d.Specificity);
        Assert.Null(d.NegativePredictiveValue);
        Assert.Equal(1.0, d.Sensitivity);

        var empty = Metrics.At([], 0.5);
        Assert.Equal(0, empty.Total);
        Assert.Null(empty.Accuracy);
    }

    // ---- retrieval ----

    [Fact]
    public void Precision_at_k_by_hand()
    {
        Assert.Equal(0.5, Metrics.PrecisionAtK([true, false, true, false]));
        Assert.Equal(1.0, Metrics.PrecisionAtK([true]));
        Assert.Equal(0.0, Metrics.PrecisionAtK([false, false, false]));
        Assert.Equal(2.0 / 3, Metrics.PrecisionAtK([false, true, true])!.Value, 1e-15);
        Assert.Null(Metrics.PrecisionAtK([]));
    }

    [Fact]
    public void Average_precision_by_hand()
    {
        bool[] relevant = [true, false, true, false];
        // Two relevant in the reference: divided by min(4, 2) = 2.
        Assert.Equal((1.0 / 1 + 2.0 / 3) / 2, Metrics.AveragePrecision(relevant, 4, 2)!.Value, 1e-15);
        // Ten relevant in the reference: divided by min(4, 10) = 4.
        Assert.Equal((1.0 / 1 + 2.0 / 3) / 4, Metrics.AveragePrecision(relevant, 4, 10)!.Value, 1e-15);
        // Hits at ranks 2 and 3: (1/2 + 2/3) / min(3, 5).
        Assert.Equal((0.5 + 2.0 / 3) / 3, Metrics.AveragePrecision([false, true, true], 3, 5)!.Value, 1e-15);
        // All relevant: 1.
        Assert.Equal(1.0, Metrics.AveragePrecision([true, true, true], 3, 3)!.Value, 1e-15);
        // Nothing relevant retrieved while some exist: 0.
        Assert.Equal(0.0, Metrics.AveragePrecision([false, false], 2, 4));
        // A short list (fewer neighbours than k) is not rewarded: still divided by min(k, reference).
        Assert.Equal(1.0 / 3, Metrics.AveragePrecision([true], 3, 5)!.Value, 1e-15);
    }

    [Fact]
    public void Average_precision_is_null_when_nothing_relevant_exists()
    {
        Assert.Null(Metrics.AveragePrecision([false, false], 2, 0));
        Assert.Null(Metrics.AveragePrecision([false, false], 0, 5));
        Assert.Null(Metrics.AveragePrecision([], 3, -1));
    }
}
