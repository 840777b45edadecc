using MedSearch.Evaluation;
using Xunit;

namespace MedSearch.Evaluation.Tests;

public class TerminalTableTests
{
    private static string[] Lines(EvaluationReport report)
    {
        var output = new StringWriter();
        TerminalTable.Write(report, output);
        return output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
    }

    [Fact]
    public void Summarises_each_label_per_k_with_n_a_for_what_is_undefined()
    {
        var lines = Lines(ReportWriterTests.SampleReport());

        Assert.Contains(lines, l => l.Contains("Reference cases: 120") && l.Contains("Queries: 9") && l.Contains("Unlabelled excluded: 2"));
        Assert.Contains(lines, l => l.Contains("Duplicates: 1 found (1 with different labels) for 1 queries, dropped"));
        Assert.Contains("k=5  ANN recall 0.988", lines);
        Assert.Contains("k=10  ANN recall 0.998", lines);

        var effusion = lines.Single(l => l.StartsWith("pleural effusion/left") && l.Contains("0.885"));
        Assert.Equal(["pleural", "effusion/left", "4", "5", "0.885", "0.700-0.970", "0.880", "sensitivity", "0.75", "@", "0.600",
            "0.750", "0.800", "0.750", "0.800", "0.778", "0.620", "0.580"], effusion.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var nodule = lines.First(l => l.StartsWith("nodule"));
        Assert.Equal(["nodule", "9", "0", "n/a", "n/a", "n/a", "default", "@", "0.500", "0.778", "n/a", "1.000", "0.000", "0.778", "n/a", "n/a"],
            nodule.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(lines, l => l == "  Largest AUC gap by sex: F 0.910 vs M 0.850 (0.060)");
    }

    [Fact]
    public void Columns_line_up_and_lone_subgroups_are_left_out()
    {
        var lines = Lines(ReportWriterTests.SampleReport());
        var header = lines.First(l => l.StartsWith("label"));
        var firstTable = lines.SkipWhile(l => l != header).Skip(1).TakeWhile(l => !l.StartsWith("k=")).ToList();

        // Sex has three groups and is listed; the one age band would repeat the overall row.
        Assert.Contains(firstTable, l => l.StartsWith("  sex F "));
        Assert.Contains(firstTable, l => l.StartsWith("  sex M "));
        Assert.DoesNotContain(firstTable, l => l.StartsWith("  age"));
        // Right-aligned numbers end where their header does.
        int aucEnd = header.IndexOf("AUC", StringComparison.Ordinal) + 3;
        foreach (var row in firstTable.Where(l => !l.TrimStart().StartsWith("Largest")))
            Assert.Equal(' ', row[aucEnd]);
        Assert.Equal("0.885", lines.Single(l => l.StartsWith("pleural") && l.Contains("0.885"))[(aucEnd - 5)..aucEnd]);
    }
}
