using System.Text.Json;
using Grpc.Net.Client;
using MedSearch.Protocol.V1;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// All of BreastMNIST (780 images, with its train/val/test split and synthetic sex and age) indexed once by the
/// real `medsearch index`, and one full `medsearch eval` of the test split against the rest, shared by the tests.
/// </summary>
public sealed class BreastMnistEvaluationFixture : IAsyncLifetime
{
    public const int TestCases = 156;
    public const int AllCases = 780;
    public static readonly string[] DefaultKs = ["1", "5", "10", "25", "50", "100"];

    public string Root { get; } = Directory.CreateTempSubdirectory("medsearch-eval-").FullName;
    public string Images => Path.Combine(Root, "images");
    public string Data => Path.Combine(Root, "data");
    public string DefaultReport => Path.Combine(Root, "default-report");
    public CliResult DefaultRun { get; private set; } = null!;
    public bool Available { get; private set; }

    public async Task InitializeAsync()
    {
        if (SharedData.SkipReason(MedMnistFolder.BreastMnist) is not null) return;
        var labels = MedMnistFolder.WriteBreastMnistSplits(Images);
        var index = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(8), "index", Images, "--labels", labels, "--data", Data);
        Assert.True(index.ExitCode == 0, index.ToString());
        DefaultRun = await EvalAsync(DefaultReport, "--split", "split=test", "--k", string.Join(',', DefaultKs),
            "--target-sensitivity", "0.95", "--age-bands", "0-29,30-59,60+");
        Available = true;
    }

    public Task<CliResult> EvalAsync(string output, params string[] args) =>
        MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), ["eval", "--data", Data, "--out", output, .. args]);

    public Task DisposeAsync()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}

public sealed class EvaluationTests(BreastMnistEvaluationFixture fixture) : IClassFixture<BreastMnistEvaluationFixture>
{
    private static JsonElement Report(string directory) => JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "report.json"))).RootElement;

    private static IEnumerable<(int K, JsonElement Label)> Labels(JsonElement report) =>
        report.GetProperty("by_k").EnumerateArray().SelectMany(k => k.GetProperty("labels").EnumerateArray().Select(l => (k.GetProperty("k").GetInt32(), l)));

    private void RequireDefaultRun()
    {
        Assert.True(fixture.Available, "the BreastMNIST fixture did not index");
        Assert.True(fixture.DefaultRun.ExitCode == 0, fixture.DefaultRun.ToString());
    }

    private string Output(string name) => Path.Combine(fixture.Root, name + "-" + Guid.NewGuid().ToString("N")[..6]);

    /// <summary>
    /// The independent check: scikit-learn's KNeighborsClassifier on the exported embeddings, with the same k and
    /// weighting, gives eval's exact-search scores, and roc_auc_score gives eval's AUCs.
    /// </summary>
    [SharedDataTheory(MedMnistFolder.BreastMnist)]
    [InlineData("similarity")]
    [InlineData("uniform")]
    [InlineData("softmax")]
    public async Task Scores_and_aucs_agree_with_scikit_learn(string weighting)
    {
        RequireDefaultRun();
        var report = weighting == "similarity" ? fixture.DefaultReport : Output(weighting);
        if (weighting != "similarity")
        {
            var run = await fixture.EvalAsync(report, "--split", "split=test", "--k", "1,5,10,25", "--weighting", weighting, "--temperature", "0.05");
            Assert.True(run.ExitCode == 0, run.ToString());
        }
        var export = Output("export");
        var exported = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "export", "--data", fixture.Data, "--out", export);
        Assert.True(exported.ExitCode == 0, exported.ToString());
        Assert.Contains($"exported {BreastMnistEvaluationFixture.AllCases} case(s) of 512 dimensions", exported.Output);

        var check = await DebianPython.RunAsync(Path.Combine(SharedData.RepositoryRoot, "tests", "python", "sklearn_check.py"),
            export, report, "split", "test", weighting, "0.05");
        var result = JsonDocument.Parse(check).RootElement;
        int ks = Report(report).GetProperty("by_k").GetArrayLength();
        Assert.Equal(BreastMnistEvaluationFixture.TestCases * 2 * ks, result.GetProperty("scores_compared").GetInt32());
        Assert.True(result.GetProperty("max_score_difference").GetDouble() < 1e-6, check);
        Assert.True(result.GetProperty("max_auc_difference").GetDouble() < 1e-9, check);
    }

    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public void The_approximate_search_loses_at_most_0_005_auc_to_exact_search_and_its_recall_is_reported()
    {
        RequireDefaultRun();
        var report = Report(fixture.DefaultReport);
        Assert.Equal(BreastMnistEvaluationFixture.DefaultKs.Select(int.Parse), report.GetProperty("by_k").EnumerateArray().Select(k => k.GetProperty("k").GetInt32()));
        foreach (var byK in report.GetProperty("by_k").EnumerateArray())
        {
            double recall = byK.GetProperty("ann_recall").GetDouble();
            Assert.InRange(recall, 0.9, 1.0);
        }
        foreach (var (k, label) in Labels(report))
        {
            double approximate = label.GetProperty("overall").GetProperty("auc").GetDouble();
            double exact = label.GetProperty("exact_auc").GetDouble();
            Assert.True(Math.Abs(approximate - exact) <= 0.005, $"k={k} {label.GetProperty("label")}: AUC {approximate} approximate vs {exact} exact");
            var interval = label.GetProperty("overall").GetProperty("auc_interval");
            Assert.InRange(approximate, interval.GetProperty("lower").GetDouble(), interval.GetProperty("upper").GetDouble());
        }
        // The terminal table and the report files a user opens.
        Assert.Contains("ANN recall", fixture.DefaultRun.Output);
        Assert.Contains("malignant", fixture.DefaultRun.Output);
        foreach (var k in BreastMnistEvaluationFixture.DefaultKs)
        foreach (var file in new[] { $"roc-malignant-k{k}.csv", $"roc-malignant-k{k}.png", $"roc-normal_benign-k{k}.png" })
            Assert.True(File.Exists(Path.Combine(fixture.DefaultReport, file)), file);
        var html = File.ReadAllText(Path.Combine(fixture.DefaultReport, "report.html"));
        Assert.Equal(BreastMnistEvaluationFixture.DefaultKs.Length * 2, html.Split("data:image/png;base64,").Length - 1);
    }

    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public void Subgroups_partition_the_queries_and_the_largest_gap_is_the_difference_of_the_extremes()
    {
        RequireDefaultRun();
        var report = Report(fixture.DefaultReport);
        foreach (var (k, label) in Labels(report))
        {
            var overall = label.GetProperty("overall");
            var groups = label.GetProperty("subgroups").EnumerateArray().ToList();
            foreach (var prefix in new[] { "sex ", "age " })
            {
                var dimension = groups.Where(g => g.GetProperty("group").GetString()!.StartsWith(prefix, StringComparison.Ordinal)).ToList();
                Assert.Equal(overall.GetProperty("positives").GetInt32(), dimension.Sum(g => g.GetProperty("positives").GetInt32()));
                Assert.Equal(overall.GetProperty("negatives").GetInt32(), dimension.Sum(g => g.GetProperty("negatives").GetInt32()));
            }
            Assert.Equal(["sex F", "sex M", "age 0-29", "age 30-59", "age 60+"], groups.Select(g => g.GetProperty("group").GetString()));

            var aucGap = label.GetProperty("largest_gaps").EnumerateArray()
                .Single(g => g.GetProperty("dimension").GetString() == "age" && g.GetProperty("metric").GetString() == "AUC");
            var aucs = groups.Where(g => g.GetProperty("group").GetString()!.StartsWith("age ", StringComparison.Ordinal))
                .ToDictionary(g => g.GetProperty("group").GetString()!, g => g.GetProperty("auc").GetDouble());
            Assert.Equal(aucs.Values.Max() - aucs.Values.Min(), aucGap.GetProperty("difference").GetDouble(), 12);
            Assert.Equal(aucs.Values.Max(), aucs[aucGap.GetProperty("higher").GetString()!]);
            Assert.Equal(aucs.Values.Min(), aucs[aucGap.GetProperty("lower").GetString()!]);
        }
    }

    /// <summary>The dataset's README: BreastMNIST has exactly one test image that is also in train.</summary>
    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task The_known_test_train_duplicate_is_found_and_can_be_dropped()
    {
        RequireDefaultRun();
        var kept = Report(fixture.DefaultReport);
        var pair = Assert.Single(kept.GetProperty("duplicates").GetProperty("pairs").EnumerateArray());
        var query = pair.GetProperty("query").GetString()!;
        Assert.StartsWith("file:test/", query);
        Assert.StartsWith("file:train/", pair.GetProperty("reference").GetString());
        Assert.Equal(0, kept.GetProperty("duplicates").GetProperty("unchecked").GetInt32());
        Assert.Equal(BreastMnistEvaluationFixture.TestCases, kept.GetProperty("dataset").GetProperty("queries").GetInt32());

        var output = Output("dropped");
        var run = await fixture.EvalAsync(output, "--split", "split=test", "--k", "10", "--drop-duplicates");
        Assert.True(run.ExitCode == 0, run.ToString());
        var dropped = Report(output);
        Assert.True(dropped.GetProperty("duplicates").GetProperty("dropped").GetBoolean());
        Assert.Equal(BreastMnistEvaluationFixture.TestCases - 1, dropped.GetProperty("dataset").GetProperty("queries").GetInt32());
        Assert.DoesNotContain(File.ReadLines(Path.Combine(output, "scores.csv")), line => line.StartsWith(query + ",", StringComparison.Ordinal));
    }

    /// <summary>Leave-one-out at k=1: were a case its own neighbour, every vote would be its own label and the AUC 1.</summary>
    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task Leave_one_out_queries_every_case_without_itself()
    {
        Assert.True(fixture.Available, "fixture unavailable");
        var output = Output("loo");
        var run = await fixture.EvalAsync(output, "--leave-one-out", "--k", "1");
        Assert.True(run.ExitCode == 0, run.ToString());
        var report = Report(output);
        Assert.Equal(BreastMnistEvaluationFixture.AllCases, report.GetProperty("dataset").GetProperty("queries").GetInt32());
        foreach (var (_, label) in Labels(report))
            Assert.InRange(label.GetProperty("overall").GetProperty("auc").GetDouble(), 0.5, 0.95);
        // The one duplicate pair, seen from each side.
        Assert.Equal(2, report.GetProperty("duplicates").GetProperty("pairs").GetArrayLength());
    }

    /// <summary>
    /// Images outside the collection are read and embedded exactly as indexing did: the test images' own stored
    /// copies are their nearest neighbours (so k=1 classifies perfectly) and every one is reported as a duplicate.
    /// </summary>
    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task Folder_queries_go_through_the_indexing_pipeline()
    {
        Assert.True(fixture.Available, "fixture unavailable");
        var folder = Path.Combine(fixture.Images, "test");
        var labels = Path.Combine(fixture.Root, "test-labels.csv");
        File.WriteAllLines(labels, ["path,labels", .. File.ReadLines(Path.Combine(fixture.Images, "labels.csv"))
            .Where(l => l.StartsWith("test/", StringComparison.Ordinal))
            .Select(l => l.Split(',')).Select(f => $"{f[0]["test/".Length..]},{f[1]}")]);
        var output = Output("folder");
        var run = await fixture.EvalAsync(output, "--queries", folder, "--labels", labels, "--k", "1");
        Assert.True(run.ExitCode == 0, run.ToString());
        var report = Report(output);
        Assert.Equal(BreastMnistEvaluationFixture.TestCases, report.GetProperty("dataset").GetProperty("queries").GetInt32());
        Assert.Equal(BreastMnistEvaluationFixture.AllCases, report.GetProperty("dataset").GetProperty("reference_cases").GetInt64());
        // Each query equals its stored copy; the one test image that is also in train equals that one too, and
        // BreastMNIST labels the two copies differently: a conflict the report must show.
        var pairs = report.GetProperty("duplicates").GetProperty("pairs").EnumerateArray().ToList();
        Assert.Equal(BreastMnistEvaluationFixture.TestCases + 1, pairs.Count);
        var conflict = Assert.Single(pairs, p => !p.GetProperty("same_labels").GetBoolean());
        Assert.StartsWith("file:train/", conflict.GetProperty("reference").GetString());
        Assert.Contains("(1 with different labels)", run.Output);
        // At k=1 every query is its own stored copy's nearest neighbour (similarity 1), so the exact vote is its
        // own label — but for the conflicting image, whose two copies tie and disagree.
        var tied = "file:" + conflict.GetProperty("query").GetString()!["file:".Length..];
        foreach (var line in File.ReadLines(Path.Combine(output, "scores.csv")).Skip(1))
        {
            var f = line.Split(',');
            if (f[0] != tied) Assert.True(f[3] == f[4] && f[3] == f[5], $"{line}: the query's stored copy did not decide its vote");
        }

        var dropped = await fixture.EvalAsync(Output("folder-dropped"), "--queries", folder, "--labels", labels, "--k", "1", "--drop-duplicates");
        Assert.Equal(2, dropped.ExitCode);
        Assert.Contains("no labelled query to evaluate", dropped.Error);
    }

    /// <summary>The chosen threshold reaches the wanted sensitivity, is stored, and the server's Classify decides with it.</summary>
    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task A_saved_operating_point_is_what_Classify_decides_with()
    {
        Assert.True(fixture.Available, "fixture unavailable");
        var data = Path.Combine(fixture.Root, "data-saved-" + Guid.NewGuid().ToString("N")[..6]);
        CopyDirectory(fixture.Data, data);
        var output = Output("saved");
        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "eval", "--data", data, "--out", output,
            "--split", "split=test", "--k", "10", "--target-sensitivity", "0.95", "--save");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("saved operating point of malignant", run.Output);

        var stored = JsonDocument.Parse(File.ReadAllText(Path.Combine(data, "operating-points.json"))).RootElement.GetProperty("labels");
        var thresholds = new Dictionary<string, double>();
        foreach (var (_, label) in Labels(Report(output)))
        {
            var name = label.GetProperty("label").GetString()!;
            var overall = label.GetProperty("overall").GetProperty("at_operating_point");
            Assert.True(overall.GetProperty("sensitivity").GetDouble() >= 0.95);
            thresholds[name] = overall.GetProperty("threshold").GetDouble();
            var point = stored.GetProperty(name);
            Assert.Equal(thresholds[name], point.GetProperty("threshold").GetDouble());
            Assert.Equal(10, point.GetProperty("k").GetInt32());
            Assert.Equal(overall.GetProperty("sensitivity").GetDouble(), point.GetProperty("expected_sensitivity").GetDouble());
        }

        await using var server = await RunningServer.StartAsync(data);
        using var channel = GrpcChannel.ForAddress(server.Address);
        var client = new SearchService.SearchServiceClient(channel);
        var response = await client.ClassifyAsync(new ClassifyRequest
        {
            Search = new SearchRequest { CaseId = "file:test/0003.png", K = 10, ExcludeQueryCase = true },
            Weighting = Protocol.V1.Weighting.Similarity,
        });
        foreach (var decision in response.Labels)
        {
            Assert.Equal(thresholds[decision.Label], decision.Threshold);
            Assert.Equal("sensitivity 0.95 @k=10", decision.OperatingPoint);
            Assert.Equal(decision.Score >= decision.Threshold, decision.Positive);
        }
    }

    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task Bad_options_are_refused_naming_what_is_wrong_and_change_nothing()
    {
        Assert.True(fixture.Available, "fixture unavailable");
        var cases = new (string[] Args, string Message)[]
        {
            (["--split", "test"], "--split must be KEY=VALUE"),
            (["--split", "split=nosuch"], "no case of the collection has metadata split=nosuch"),
            (["--split", "split=test", "--k", "0"], "--k must be positive"),
            (["--split", "split=test", "--k", "5000"], "k: each must be between 1 and"),
            (["--split", "split=test", "--save", "--target-sensitivity", "0.9", "--k", "5,10"], "--save needs"),
            (["--split", "split=test", "--target-sensitivity", "1.5"], "--target-sensitivity must be above 0 and at most 1"),
            (["--split", "split=test", "--age-bands", "0-17,10-30"], "--age-bands"),
            (["--queries", fixture.Images], "--queries and --labels go together"),
            (["--leave-one-out", "--split", "split=test"], "give exactly one of"),
        };
        foreach (var (args, message) in cases)
        {
            var run = await fixture.EvalAsync(Output("bad"), args);
            Assert.True(run.ExitCode == 2, $"{string.Join(' ', args)}: {run}");
            Assert.Contains(message, run.Error);
        }
        Assert.False(File.Exists(Path.Combine(fixture.Data, "operating-points.json")));
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var directory in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, directory)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            if (Path.GetFileName(file) != "LOCK") File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}
