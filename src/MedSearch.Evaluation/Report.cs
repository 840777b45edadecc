namespace MedSearch.Evaluation;

/// <summary>One point of an ROC curve: calling every case with score ≥ <see cref="Threshold"/> positive gives these rates.</summary>
public sealed record RocPoint(double Threshold, double FalsePositiveRate, double TruePositiveRate);

/// <summary>A 95% confidence interval.</summary>
public sealed record Interval(double Lower, double Upper);

/// <summary>The two-by-two table at one threshold and the rates read from it; a rate is null when its denominator is 0.</summary>
public sealed record Confusion(double Threshold, int TruePositives, int FalsePositives, int TrueNegatives, int FalseNegatives)
{
    public int Total => TruePositives + FalsePositives + TrueNegatives + FalseNegatives;
    public double? Accuracy => Ratio(TruePositives + TrueNegatives, Total);
    public double? Sensitivity => Ratio(TruePositives, TruePositives + FalseNegatives);
    public double? Specificity => Ratio(TrueNegatives, TrueNegatives + FalsePositives);
    public double? PositivePredictiveValue => Ratio(TruePositives, TruePositives + FalsePositives);
    public double? NegativePredictiveValue => Ratio(TrueNegatives, TrueNegatives + FalseNegatives);

    private static double? Ratio(int numerator, int denominator) => denominator == 0 ? null : (double)numerator / denominator;
}

/// <summary>How the decision threshold of a label was set for the report.</summary>
/// <param name="Name">As stored with the label and returned by Classify, e.g. "sensitivity 0.95".</param>
/// <param name="Source">"target" (chosen on this evaluation set), "stored" (the collection's operating point) or "default" (0.5).</param>
public sealed record OperatingPointChoice(string Name, string Source, double Threshold);

/// <summary>Classification and retrieval metrics of one group of queries (all of them, or one subgroup) for one label.</summary>
/// <param name="Auc">Null when the group lacks positives or negatives.</param>
/// <param name="AucInterval">Bootstrap 95% interval; null with <paramref name="Auc"/>.</param>
/// <param name="PrecisionAtK">Over the group's positive queries: the mean share of their k neighbours that carry the label.</param>
/// <param name="MeanAveragePrecision">Over the group's positive queries: the mean average precision of the k neighbours.</param>
public sealed record GroupMetrics(string Group, int Positives, int Negatives, double? Auc, Interval? AucInterval, Confusion AtOperatingPoint,
    double? PrecisionAtK, double? MeanAveragePrecision);

/// <summary>The largest difference of one metric between the subgroups of one kind (sex, or age band).</summary>
public sealed record SubgroupGap(string Dimension, string Metric, string Higher, string Lower, double Difference);

/// <summary>Everything reported for one label at one k.</summary>
/// <param name="Overall">Approximate (HNSW) search: what the service answers.</param>
/// <param name="ExactAuc">The same evaluation with exact search; null when AUC is undefined.</param>
/// <param name="Roc">The approximate search's ROC curve, strictly decreasing thresholds from +∞.</param>
/// <param name="Subgroups">By sex then by age band, only groups with at least one query.</param>
public sealed record LabelReport(string Label, OperatingPointChoice OperatingPoint, GroupMetrics Overall, double? ExactAuc,
    IReadOnlyList<RocPoint> Roc, IReadOnlyList<GroupMetrics> Subgroups, IReadOnlyList<SubgroupGap> LargestGaps);

/// <summary>One neighbourhood size's results.</summary>
/// <param name="AnnRecall">Share of the exact k nearest neighbours that the approximate search also returned, over all queries.</param>
public sealed record KReport(int K, double AnnRecall, IReadOnlyList<LabelReport> Labels);

/// <summary>Exact-duplicate images (same decoded pixels) between the queries and the reference cases.</summary>
/// <param name="Pairs">Up to <see cref="MaxListed"/> of the pairs found, those with different labels first: query key and
/// reference key (a query is paired with every reference it equals). Blank slices of volumes can pair by millions.</param>
/// <param name="Total">All pairs found.</param>
/// <param name="Conflicting">Pairs whose two copies carry different labels.</param>
/// <param name="Queries">Queries with at least one duplicate in the reference.</param>
/// <param name="Dropped">True when those queries were left out of every metric.</param>
/// <param name="Unchecked">Cases without a pixel hash (stored before hashes were recorded), which could not be checked.</param>
public sealed record DuplicateReport(IReadOnlyList<DuplicatePair> Pairs, long Total, long Conflicting, int Queries, bool Dropped, int Unchecked)
{
    public const int MaxListed = 1000;
}

/// <param name="SameLabels">False when the two copies of one image carry different labels: a labelling conflict the
/// dataset's owner should resolve, and a query whose vote partly depends on which copy a tie returns.</param>
public sealed record DuplicatePair(string Query, string Reference, bool SameLabels);

/// <summary>What was evaluated and how.</summary>
/// <param name="Mode">"split" (cases of the collection marked as the query split), "folder" (images outside it) or "leave-one-out".</param>
/// <param name="QuerySource">The split (e.g. "split=test"), the folder, or "all cases".</param>
/// <param name="Exclusions">What a query never sees besides the reference set's bounds, e.g. "itself", "its own study".</param>
public sealed record EvaluationSettings(string DataPath, string ModelId, string Mode, string QuerySource, IReadOnlyList<int> Ks,
    string Weighting, double? Temperature, IReadOnlyList<string> Exclusions, string? Target, IReadOnlyList<string> AgeBands,
    int BootstrapSamples, int Seed, string Hnsw);

/// <summary>How many cases took part.</summary>
/// <param name="Queries">Queries scored (labelled, not dropped).</param>
/// <param name="UnlabelledQueries">Queries without any label: excluded from every metric and counted here.</param>
/// <param name="FailedQueries">Query images that could not be read or embedded, each with its reason.</param>
public sealed record DatasetSummary(long ReferenceCases, int Queries, int UnlabelledQueries, IReadOnlyList<string> FailedQueries,
    IReadOnlyDictionary<string, int> QueriesPerLabel);

public sealed record EvaluationReport(DateTimeOffset Created, EvaluationSettings Settings, DatasetSummary Dataset, DuplicateReport Duplicates,
    IReadOnlyList<KReport> ByK);
