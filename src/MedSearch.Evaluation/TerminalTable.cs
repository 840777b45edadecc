using System.Globalization;

namespace MedSearch.Evaluation;

/// <summary>The evaluation's summary as plain aligned text for the terminal; the folder written by <see cref="ReportWriter"/> holds the rest.</summary>
public static class TerminalTable
{
    private static readonly string[] Header =
        ["label", "pos", "neg", "AUC", "95% CI", "exact AUC", "op point", "sens", "spec", "PPV", "NPV", "acc", "P@k", "mAP"];

    private const int TextColumns = 1;
    private const int OperatingPointColumn = 6;

    public static void Write(EvaluationReport report, TextWriter output)
    {
        var dataset = report.Dataset;
        var duplicates = report.Duplicates;
        output.WriteLine($"Mode: {report.Settings.Mode}   Queries from: {report.Settings.QuerySource}");
        output.WriteLine($"Reference cases: {dataset.ReferenceCases}   Queries: {dataset.Queries}   "
            + $"Unlabelled excluded: {dataset.UnlabelledQueries}   Failed: {dataset.FailedQueries.Count}");
        output.WriteLine($"Duplicates: {duplicates.Total} found ({duplicates.Conflicting} with different labels) for {duplicates.Queries} queries, {(duplicates.Dropped ? "dropped" : "kept")}"
            + (duplicates.Unchecked > 0 ? $"   ({duplicates.Unchecked} cases unchecked: no pixel hash)" : ""));

        foreach (var byK in report.ByK)
        {
            output.WriteLine();
            output.WriteLine($"k={byK.K}  ANN recall {ReportFormat.Rate(byK.AnnRecall)}");
            var lines = new List<Line> { new Row(Header) };
            foreach (var label in byK.Labels)
            {
                var operatingPoint = $"{label.OperatingPoint.Name} @ {ReportFormat.Threshold(label.Overall.AtOperatingPoint.Threshold)}";
                lines.Add(new Row(Cells(label.Label, label.Overall, ReportFormat.Auc(label.ExactAuc), operatingPoint)));
                // A dimension with one group (everyone "sex unknown") would only repeat the overall row.
                foreach (var dimension in label.Subgroups.GroupBy(g => ReportFormat.Dimension(g.Group)).Where(d => d.Count() > 1))
                foreach (var group in dimension)
                    lines.Add(new Row(Cells("  " + group.Group, group, "", "")));
                foreach (var gap in label.LargestGaps)
                    lines.Add(new Text("  " + ReportFormat.Gap(gap, label)));
            }
            WriteAligned(lines, output);
        }
    }

    private abstract record Line;
    private sealed record Row(string[] Cells) : Line;
    private sealed record Text(string Value) : Line;

    /// <summary>Subgroup rows leave exact AUC and the operating point blank: the first is computed overall only, the second is shared.</summary>
    private static string[] Cells(string name, GroupMetrics group, string exactAuc, string operatingPoint)
    {
        var at = group.AtOperatingPoint;
        return
        [
            name, group.Positives.ToString(CultureInfo.InvariantCulture), group.Negatives.ToString(CultureInfo.InvariantCulture),
            ReportFormat.Auc(group.Auc), ReportFormat.Interval(group.AucInterval, "-"), exactAuc,
            operatingPoint, ReportFormat.Rate(at.Sensitivity), ReportFormat.Rate(at.Specificity),
            ReportFormat.Rate(at.PositivePredictiveValue), ReportFormat.Rate(at.NegativePredictiveValue), ReportFormat.Rate(at.Accuracy),
            ReportFormat.Rate(group.PrecisionAtK), ReportFormat.Rate(group.MeanAveragePrecision),
        ];
    }

    private static void WriteAligned(List<Line> lines, TextWriter output)
    {
        var rows = lines.OfType<Row>().ToList();
        var widths = Enumerable.Range(0, Header.Length).Select(c => rows.Max(r => r.Cells[c].Length)).ToArray();
        foreach (var line in lines)
        {
            if (line is Text text)
            {
                output.WriteLine(text.Value);
                continue;
            }
            var cells = ((Row)line).Cells;
            var padded = cells.Select((cell, c) => c < TextColumns || c == OperatingPointColumn ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]));
            output.WriteLine(string.Join("  ", padded).TrimEnd());
        }
    }
}
