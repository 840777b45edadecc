using System.Globalization;
using System.Text.RegularExpressions;
using MedSearch.Evaluation;
using SkiaSharp;
using Xunit;

namespace MedSearch.Evaluation.Tests;

public sealed class ReportWriterTests : IDisposable
{
    private const string Effusion = "pleural effusion/left";
    private const string Nodule = "nodule";
    private const string HostileGroup = "sex <script>alert(1)</script>";

    private readonly string directory = Path.Combine(Path.GetTempPath(), "medsearch-report-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
    }

    /// <summary>
    /// Two labels at two k: one measurable (sens 0.75, spec 0.8 at its operating point), one without negatives so
    /// that its AUC, interval, ROC curve and specificity are all undefined.
    /// </summary>
    internal static EvaluationReport SampleReport()
    {
        LabelReport Effusion(int k) => new(
            ReportWriterTests.Effusion,
            new OperatingPointChoice("sensitivity 0.75", "target", 0.6),
            new GroupMetrics("overall", 4, 5, 0.875 + k / 1000.0, new Interval(0.7, 0.97), new Confusion(0.6, 3, 1, 4, 1), 0.62, 0.58),
            0.88,
            [new RocPoint(double.PositiveInfinity, 0, 0), new RocPoint(0.9, 0, 0.5), new RocPoint(0.6, 0.2, 0.75), new RocPoint(0.1, 1, 1)],
            [
                new GroupMetrics("sex F", 2, 3, 0.91, new Interval(0.8, 1), new Confusion(0.6, 2, 0, 3, 0), 0.7, 0.66),
                new GroupMetrics("sex M", 2, 1, 0.85, new Interval(0.6, 1), new Confusion(0.6, 1, 1, 1, 1), 0.5, 0.45),
                new GroupMetrics(HostileGroup, 0, 1, null, null, new Confusion(0.6, 0, 0, 1, 0), null, null),
                new GroupMetrics("age 18-39", 4, 5, 0.875, new Interval(0.7, 0.97), new Confusion(0.6, 3, 1, 4, 1), 0.62, 0.58),
            ],
            [new SubgroupGap("sex", "AUC", "sex F", "sex M", 0.06)]);

        LabelReport Nodule() => new(
            ReportWriterTests.Nodule,
            new OperatingPointChoice("default", "default", 0.5),
            new GroupMetrics("overall", 9, 0, null, null, new Confusion(0.5, 7, 0, 0, 2), null, null),
            null, [], [], []);

        return new EvaluationReport(
            new DateTimeOffset(2025, 3, 14, 9, 26, 53, TimeSpan.FromHours(1)),
            new EvaluationSettings("/data/chest <x>", "resnet18@v1", "split", "split=test", [5, 10], "uniform", null,
                ["itself", "its own study"], "sensitivity=0.75", ["age 0-17", "age 18-39"], 200, 7, "M=16 ef_search=64"),
            new DatasetSummary(120, 9, 2, ["bad.dcm: not a DICOM file"], new Dictionary<string, int> { [ReportWriterTests.Effusion] = 4, [ReportWriterTests.Nodule] = 9 }),
            new DuplicateReport([new DuplicatePair("q/1.png", "r/7.png", SameLabels: false)], Total: 1, Conflicting: 1, Queries: 1, Dropped: true, Unchecked: 3),
            [new KReport(5, 0.9876, [Effusion(5), Nodule()]), new KReport(10, 0.998, [Effusion(10), Nodule()])]);
    }

    [Fact]
    public void Json_round_trips_scores_curves_and_nulls()
    {
        var report = SampleReport();
        var written = ReportWriter.WriteAll(report, directory);
        var jsonPath = Path.Combine(directory, "report.json");
        Assert.Contains(jsonPath, written);

        var json = File.ReadAllText(jsonPath);
        Assert.Contains("\"false_positive_rate\"", json);
        Assert.Contains("\"auc\": null", json);

        var back = ReportWriter.ReadJson(jsonPath);
        Assert.Equal(report.Created, back.Created);
        Assert.Equal(report.Settings.Ks, back.Settings.Ks);
        Assert.Null(back.Settings.Temperature);
        Assert.Equal(report.Dataset.QueriesPerLabel, back.Dataset.QueriesPerLabel);
        Assert.Equal(report.Duplicates.Pairs, back.Duplicates.Pairs);
        Assert.Equal(report.ByK.Select(k => k.K), back.ByK.Select(k => k.K));
        foreach (var (expected, actual) in report.ByK.SelectMany(k => k.Labels).Zip(back.ByK.SelectMany(k => k.Labels)))
        {
            Assert.Equal(expected.Label, actual.Label);
            Assert.Equal(expected.OperatingPoint, actual.OperatingPoint);
            Assert.Equal(expected.Overall.Auc, actual.Overall.Auc);
            Assert.Equal(expected.Overall.AucInterval, actual.Overall.AucInterval);
            Assert.Equal(expected.Overall.AtOperatingPoint, actual.Overall.AtOperatingPoint);
            Assert.Equal(expected.ExactAuc, actual.ExactAuc);
            Assert.Equal(expected.Roc, actual.Roc);
            Assert.Equal(expected.Subgroups.Select(g => (g.Group, g.Auc, g.AucInterval)), actual.Subgroups.Select(g => (g.Group, g.Auc, g.AucInterval)));
            Assert.Equal(expected.LargestGaps, actual.LargestGaps);
        }
        var nodule = back.ByK[0].Labels.Single(l => l.Label == Nodule);
        Assert.Null(nodule.Overall.Auc);
        Assert.Null(nodule.Overall.AucInterval);
        Assert.Null(nodule.ExactAuc);
        Assert.Null(nodule.Overall.AtOperatingPoint.Specificity);
        Assert.Equal(double.PositiveInfinity, back.ByK[1].Labels[0].Roc[0].Threshold);
    }

    [Fact]
    public void Roc_csv_starts_at_infinity_and_parses_back_to_the_points()
    {
        var report = SampleReport();
        ReportWriter.WriteAll(report, directory);

        var lines = File.ReadAllLines(Path.Combine(directory, "roc-pleural_effusion_left-k10.csv"));
        Assert.Equal("threshold,false_positive_rate,true_positive_rate", lines[0]);
        Assert.Equal("inf,0,0", lines[1]);
        var points = lines.Skip(1).Select(line => line.Split(',')).Select(f => new RocPoint(
            f[0] == "inf" ? double.PositiveInfinity : double.Parse(f[0], CultureInfo.InvariantCulture),
            double.Parse(f[1], CultureInfo.InvariantCulture), double.Parse(f[2], CultureInfo.InvariantCulture)));
        Assert.Equal(report.ByK[1].Labels[0].Roc, points);

        Assert.Equal(["threshold,false_positive_rate,true_positive_rate"], File.ReadAllLines(Path.Combine(directory, "roc-nodule-k10.csv")));
    }

    [Fact]
    public void Writes_every_file_it_names_and_leaves_no_temporaries()
    {
        var written = ReportWriter.WriteAll(SampleReport(), directory);

        var expected = new[] { "report.json", "report.html" }
            .Concat(from k in new[] { 5, 10 } from stem in new[] { "pleural_effusion_left", "nodule" } from ext in new[] { "csv", "png" } select $"roc-{stem}-k{k}.{ext}");
        Assert.Equal(expected.Order(), written.Select(Path.GetFileName).Order()!);
        Assert.Equal(written.Order(), Directory.GetFiles(directory).Order());
    }

    [Fact]
    public void Label_names_become_safe_distinct_file_names()
    {
        var stems = ReportWriter.FileStems(["a/b", "a_b", "A_B", "a b", "a/b", "ok-1.2", ""]);
        Assert.Equal("a_b", stems["a/b"]);
        Assert.Equal("a_b-2", stems["a_b"]);
        Assert.Equal("A_B-3", stems["A_B"]);
        Assert.Equal("a_b-4", stems["a b"]);
        Assert.Equal("ok-1.2", stems["ok-1.2"]);
        Assert.Equal("_", stems[""]);
    }

    [Fact]
    public void Plot_is_640_square_with_the_operating_point_in_red()
    {
        var label = SampleReport().ByK[1].Labels[0];
        using var bitmap = SKBitmap.Decode(RocPlot.Png(label, 10));

        Assert.Equal((640, 640), (bitmap.Width, bitmap.Height));
        var at = RocPlot.ToPixel(1 - 0.8, 0.75, 640, 640);
        var colour = bitmap.GetPixel((int)MathF.Round(at.X), (int)MathF.Round(at.Y));
        Assert.True(colour.Red > 180 && colour.Green < 90 && colour.Blue < 90, $"operating point pixel is {colour}");
        // On the curve between two points, away from the operating point: the curve's blue, not background.
        var onCurve = RocPlot.ToPixel(0.1, 0.625, 640, 640);
        var curve = bitmap.GetPixel((int)MathF.Round(onCurve.X), (int)MathF.Round(onCurve.Y));
        Assert.True(curve.Blue > 150 && curve.Red < 100, $"curve pixel is {curve}");
    }

    [Fact]
    public void Plot_without_a_curve_still_renders()
    {
        var nodule = SampleReport().ByK[0].Labels[1];
        using var bitmap = SKBitmap.Decode(RocPlot.Png(nodule, 5, 320, 400));
        Assert.Equal((320, 400), (bitmap.Width, bitmap.Height));
    }

    [Fact]
    public void Html_is_self_contained_escaped_and_embeds_one_plot_per_label_and_k()
    {
        ReportWriter.WriteAll(SampleReport(), directory);
        var html = File.ReadAllText(Path.Combine(directory, "report.html"));

        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotContain("src=\"/", html);
        Assert.DoesNotContain("<link", html);
        var sources = Regex.Matches(html, "src=\"([^\"]*)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(4, sources.Count);
        foreach (var source in sources)
        {
            Assert.StartsWith("data:image/png;base64,", source);
            using var plot = SKBitmap.Decode(Convert.FromBase64String(source["data:image/png;base64,".Length..]));
            Assert.Equal(640, plot.Width);
        }

        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html);
        Assert.DoesNotContain("<script", html);
        Assert.Contains("/data/chest &lt;x&gt;", html);
        Assert.Contains(Effusion, html);
        Assert.Contains("Largest AUC gap by sex: F 0.910 vs M 0.850 (0.060)", html);
        Assert.Contains("0.885 [0.700–0.970]", html);
        Assert.Contains("n/a", html);
    }

    [Fact]
    public void Html_caps_long_duplicate_lists()
    {
        var report = SampleReport() with
        {
            Duplicates = new DuplicateReport(Enumerable.Range(0, 250).Select(i => new DuplicatePair($"q{i}", $"r{i}", true)).ToList(), 250, 0, 250, false, 0),
        };
        ReportWriter.WriteAll(report, directory);
        var html = File.ReadAllText(Path.Combine(directory, "report.html"));

        Assert.Contains("<td>q199</td>", html);
        Assert.DoesNotContain("<td>q200</td>", html);
        Assert.Contains("… and 50 more", html);
    }
}
