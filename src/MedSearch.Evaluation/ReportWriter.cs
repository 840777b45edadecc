using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using static System.Net.WebUtility;

namespace MedSearch.Evaluation;

/// <summary>
/// Writes an evaluation's report folder: report.json (the full result, machine-readable), one ROC curve per label
/// and k as CSV and PNG, and report.html, a single self-contained page that can be mailed or archived with a study.
/// </summary>
public static class ReportWriter
{
    private const int ListCap = 200;

    private static readonly ReportJson Json = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        // Every ROC curve starts at threshold +∞, which plain JSON numbers cannot hold.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        // The file is never embedded in a page, so only JSON's own escaping is needed and label names stay readable.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        // A hand-edited or truncated report fails here, naming the field, rather than as a null deep in a reader.
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    });

    /// <summary>Creates <paramref name="directory"/> and writes the report into it; returns the paths written.</summary>
    public static IReadOnlyList<string> WriteAll(EvaluationReport report, string directory)
    {
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        // Each file is replaced whole: an interrupted run leaves a reader the previous file or the new one, never half of one.
        void Write(string name, Action<Stream> write)
        {
            var path = Path.Combine(directory, name);
            Embedding.AtomicFile.Write(path, write);
            written.Add(path);
        }

        Write("report.json", stream => JsonSerializer.Serialize(stream, report, Json.EvaluationReport));
        var stems = FileStems(report.ByK.SelectMany(k => k.Labels).Select(l => l.Label));
        var plots = new Dictionary<(int K, string Label), byte[]>();
        foreach (var byK in report.ByK)
        foreach (var label in byK.Labels)
        {
            var stem = $"roc-{stems[label.Label]}-k{byK.K}";
            Write(stem + ".csv", stream => stream.Write(Encoding.UTF8.GetBytes(RocCsv(label.Roc))));
            var png = RocPlot.Png(label, byK.K);
            plots[(byK.K, label.Label)] = png;
            Write(stem + ".png", stream => stream.Write(png));
        }
        Write("report.html", stream => stream.Write(Encoding.UTF8.GetBytes(Html(report, plots))));
        return written;
    }

    public static EvaluationReport ReadJson(string path)
    {
        using var stream = File.OpenRead(path);
        return JsonSerializer.Deserialize(stream, Json.EvaluationReport) ?? throw new InvalidDataException($"{path}: the report is null");
    }

    /// <summary>
    /// Label names made safe for file names: [A-Za-z0-9._-] kept, anything else `_`. Names that then clash
    /// (also by case only, for case-insensitive file systems) get -2, -3, … in order of first appearance.
    /// </summary>
    internal static IReadOnlyDictionary<string, string> FileStems(IEnumerable<string> labels)
    {
        var stems = new Dictionary<string, string>(StringComparer.Ordinal);
        var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var label in labels)
        {
            if (stems.ContainsKey(label)) continue;
            var safe = new string(label.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_').ToArray());
            if (safe.Length == 0) safe = "_";
            var stem = safe;
            for (int n = 2; !taken.Add(stem); n++) stem = $"{safe}-{n}";
            stems[label] = stem;
        }
        return stems;
    }

    internal static string RocCsv(IReadOnlyList<RocPoint> roc)
    {
        var csv = new StringBuilder("threshold,false_positive_rate,true_positive_rate\n");
        foreach (var point in roc)
            csv.Append(CultureInfo.InvariantCulture, $"{RoundTrip(point.Threshold)},{RoundTrip(point.FalsePositiveRate)},{RoundTrip(point.TruePositiveRate)}\n");
        return csv.ToString();

        static string RoundTrip(double value) => double.IsPositiveInfinity(value) ? "inf" : value.ToString("R", CultureInfo.InvariantCulture);
    }

    private static string Html(EvaluationReport report, IReadOnlyDictionary<(int K, string Label), byte[]> plots)
    {
        var settings = report.Settings;
        var dataset = report.Dataset;
        var html = new StringBuilder();
        html.Append($$"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>MedSearch evaluation · {{HtmlEncode(settings.ModelId)}}</title>
            <style>
            body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 2rem auto; max-width: 80rem; padding: 0 1rem; line-height: 1.4; }
            h1 { margin-bottom: 0.2rem; }
            h2 { border-bottom: 2px solid #1f4eb4; padding-bottom: 0.2rem; margin-top: 2.5rem; }
            h3 { margin-top: 2rem; }
            .muted { color: #666; }
            table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
            th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
            th { background: #f3f5f9; }
            td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
            tr.overall td { font-weight: 600; background: #fafbfd; }
            table.settings th { width: 14rem; }
            img { max-width: 100%; height: auto; border: 1px solid #eee; }
            figure { margin: 1rem 0; max-width: 640px; }
            figcaption { color: #666; font-size: 0.88rem; }
            </style>
            </head>
            <body>
            <h1>MedSearch evaluation</h1>
            <p class="muted">Created {{HtmlEncode(report.Created.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture))}}</p>

            """);

        html.Append("<h2>Settings</h2>\n<table class=\"settings\">\n");
        Setting(html, "Data path", settings.DataPath);
        Setting(html, "Model", settings.ModelId);
        Setting(html, "Mode", settings.Mode);
        Setting(html, "Query source", settings.QuerySource);
        Setting(html, "k", string.Join(", ", settings.Ks));
        Setting(html, "Weighting", settings.Temperature is { } temperature
            ? $"{settings.Weighting}, temperature {temperature.ToString("0.###", CultureInfo.InvariantCulture)}" : settings.Weighting);
        Setting(html, "Exclusions", settings.Exclusions.Count == 0 ? "none" : string.Join(", ", settings.Exclusions));
        Setting(html, "Target", settings.Target ?? "n/a");
        Setting(html, "Age bands", string.Join(", ", settings.AgeBands));
        Setting(html, "Bootstrap", $"{settings.BootstrapSamples} samples, seed {settings.Seed}");
        Setting(html, "HNSW", settings.Hnsw);
        html.Append("</table>\n");

        html.Append("<h2>Dataset</h2>\n<table class=\"settings\">\n");
        Setting(html, "Reference cases", dataset.ReferenceCases.ToString(CultureInfo.InvariantCulture));
        Setting(html, "Queries scored", dataset.Queries.ToString(CultureInfo.InvariantCulture));
        Setting(html, "Unlabelled queries excluded", dataset.UnlabelledQueries.ToString(CultureInfo.InvariantCulture));
        Setting(html, "Failed queries", dataset.FailedQueries.Count.ToString(CultureInfo.InvariantCulture));
        html.Append("</table>\n");
        if (dataset.FailedQueries.Count > 0)
        {
            html.Append("<h3>Failed queries</h3>\n<ul>\n");
            foreach (var failure in dataset.FailedQueries.Take(ListCap)) html.Append($"<li>{HtmlEncode(failure)}</li>\n");
            html.Append("</ul>\n");
            More(html, dataset.FailedQueries.Count);
        }
        html.Append("<h3>Queries per label</h3>\n<table>\n<tr><th>label</th><th>queries</th></tr>\n");
        foreach (var (label, count) in dataset.QueriesPerLabel)
            html.Append($"<tr><td>{HtmlEncode(label)}</td><td class=\"num\">{count}</td></tr>\n");
        html.Append("</table>\n");

        var duplicates = report.Duplicates;
        html.Append("<h2>Duplicates</h2>\n");
        html.Append($"<p>{duplicates.Total} exact duplicate pair(s) between {duplicates.Queries} queries and reference cases, {duplicates.Conflicting} with different labels; ");
        html.Append(duplicates.Dropped ? "the queries concerned were <strong>dropped</strong> from every metric." : "<strong>kept</strong> in the metrics.");
        html.Append($" {duplicates.Unchecked} case(s) had no pixel hash and could not be checked.</p>\n");
        if (duplicates.Pairs.Count > 0)
        {
            html.Append("<table>\n<tr><th>query</th><th>reference</th><th>labels</th></tr>\n");
            foreach (var pair in duplicates.Pairs.Take(ListCap))
                html.Append($"<tr><td>{HtmlEncode(pair.Query)}</td><td>{HtmlEncode(pair.Reference)}</td><td>{(pair.SameLabels ? "same" : "<strong>different</strong>")}</td></tr>\n");
            html.Append("</table>\n");
            More(html, duplicates.Total);
        }

        foreach (var byK in report.ByK)
        {
            html.Append($"<h2>k = {byK.K}</h2>\n<p>ANN recall {ReportFormat.Rate(byK.AnnRecall)} (share of the exact {byK.K} nearest neighbours the approximate search also returned)</p>\n");
            foreach (var label in byK.Labels) LabelSection(html, label, byK.K, plots[(byK.K, label.Label)]);
        }
        html.Append("</body>\n</html>\n");
        return html.ToString();
    }

    private static void LabelSection(StringBuilder html, LabelReport label, int k, byte[] plot)
    {
        var choice = label.OperatingPoint;
        html.Append($"<h3>{HtmlEncode(label.Label)}</h3>\n");
        html.Append($"<p>Operating point: {HtmlEncode(ReportFormat.OperatingPoint(choice))}, threshold {ReportFormat.Threshold(choice.Threshold)}</p>\n");
        html.Append("<table>\n<tr><th>group</th><th>positives</th><th>negatives</th><th>AUC [95% CI]</th><th>exact-search AUC</th><th>threshold</th>"
            + $"<th>accuracy</th><th>sensitivity</th><th>specificity</th><th>PPV</th><th>NPV</th><th>precision@{k}</th><th>mAP</th></tr>\n");
        GroupRow(html, label.Overall, "overall", ReportFormat.Auc(label.ExactAuc));
        foreach (var group in label.Subgroups) GroupRow(html, group, null, "");
        html.Append("</table>\n");
        if (label.LargestGaps.Count > 0)
        {
            html.Append("<ul>\n");
            foreach (var gap in label.LargestGaps) html.Append($"<li>{HtmlEncode(ReportFormat.Gap(gap, label))}</li>\n");
            html.Append("</ul>\n");
        }
        // The caption says in words what the plot shows, for readers of the HTML who cannot see the image.
        html.Append($"<figure>\n<img src=\"data:image/png;base64,{Convert.ToBase64String(plot)}\" width=\"640\" height=\"640\" "
            + $"alt=\"ROC curve of {HtmlEncode(label.Label)} at k={k}\">\n<figcaption>ROC curve of {HtmlEncode(label.Label)} at k={k}, approximate search: "
            + "1 − specificity across, sensitivity up, both from 0 to 1 in steps of 0.2; the dashed diagonal is chance, "
            + "the red dot the operating point.</figcaption>\n</figure>\n");
    }

    private static void GroupRow(StringBuilder html, GroupMetrics group, string? rowClass, string exactAuc)
    {
        var at = group.AtOperatingPoint;
        var auc = group.Auc is null ? "n/a" : $"{ReportFormat.Auc(group.Auc)} [{ReportFormat.Interval(group.AucInterval, "–")}]";
        html.Append(rowClass is null ? "<tr>" : $"<tr class=\"{rowClass}\">");
        html.Append($"<td>{HtmlEncode(group.Group)}</td>");
        foreach (var cell in new[]
                 {
                     group.Positives.ToString(CultureInfo.InvariantCulture), group.Negatives.ToString(CultureInfo.InvariantCulture), auc, exactAuc,
                     ReportFormat.Threshold(at.Threshold), ReportFormat.Rate(at.Accuracy), ReportFormat.Rate(at.Sensitivity),
                     ReportFormat.Rate(at.Specificity), ReportFormat.Rate(at.PositivePredictiveValue), ReportFormat.Rate(at.NegativePredictiveValue),
                     ReportFormat.Rate(group.PrecisionAtK), ReportFormat.Rate(group.MeanAveragePrecision),
                 })
            html.Append($"<td class=\"num\">{HtmlEncode(cell)}</td>");
        html.Append("</tr>\n");
    }

    private static void Setting(StringBuilder html, string name, string value) =>
        html.Append($"<tr><th>{name}</th><td>{HtmlEncode(value)}</td></tr>\n");

    private static void More(StringBuilder html, long count)
    {
        if (count > ListCap) html.Append($"<p class=\"muted\">… and {count - ListCap} more</p>\n");
    }
}

/// <summary>Generated rather than reflected, so that report.json also reads and writes in a trimmed or native build.</summary>
[JsonSerializable(typeof(EvaluationReport))]
internal sealed partial class ReportJson : JsonSerializerContext;

/// <summary>How the HTML report and the terminal table print numbers, so that both read the same.</summary>
internal static class ReportFormat
{
    public const string Missing = "n/a";

    public static string Rate(double? value) => value is { } v ? v.ToString("0.000", CultureInfo.InvariantCulture) : Missing;

    public static string Auc(double? value) => Rate(value);

    /// <summary>"sensitivity 0.95 (target)"; the source only when it adds something ("default (default)" does not).</summary>
    public static string OperatingPoint(OperatingPointChoice choice) =>
        choice.Name == choice.Source ? choice.Name : $"{choice.Name} ({choice.Source})";

    public static string Interval(Interval? interval, string dash) => interval is null ? Missing : $"{Rate(interval.Lower)}{dash}{Rate(interval.Upper)}";

    /// <summary>Thresholds are vote shares; one above every score (call nothing positive) may be +∞.</summary>
    public static string Threshold(double value) => double.IsPositiveInfinity(value) ? "inf" : Rate(value);

    /// <summary>The subgroup kind a group belongs to: its name's first word ("sex F", "age 18-39"), as <see cref="Subgroups"/> names them.</summary>
    public static string Dimension(string group) => group.Split(' ', 2)[0];

    /// <summary>"Largest AUC gap by sex: F 0.910 vs M 0.850 (0.060)"; the two values only when the metric is one the report holds.</summary>
    public static string Gap(SubgroupGap gap, LabelReport label)
    {
        var higher = Value(gap.Higher);
        var lower = Value(gap.Lower);
        return higher is null || lower is null
            ? $"Largest {gap.Metric} gap by {gap.Dimension}: {Short(gap.Higher)} vs {Short(gap.Lower)} ({Rate(gap.Difference)})"
            : $"Largest {gap.Metric} gap by {gap.Dimension}: {Short(gap.Higher)} {Rate(higher)} vs {Short(gap.Lower)} {Rate(lower)} ({Rate(gap.Difference)})";

        string Short(string group) => group.StartsWith(gap.Dimension + " ", StringComparison.Ordinal) ? group[(gap.Dimension.Length + 1)..] : group;

        double? Value(string name)
        {
            var group = label.Subgroups.FirstOrDefault(g => g.Group == name || g.Group == $"{gap.Dimension} {name}");
            if (group is null) return null;
            var at = group.AtOperatingPoint;
            return gap.Metric.ToLowerInvariant() switch
            {
                "auc" => group.Auc,
                "sensitivity" => at.Sensitivity,
                "specificity" => at.Specificity,
                "accuracy" => at.Accuracy,
                "ppv" => at.PositivePredictiveValue,
                "npv" => at.NegativePredictiveValue,
                "precision@k" => group.PrecisionAtK,
                "map" => group.MeanAveragePrecision,
                _ => null,
            };
        }
    }
}
