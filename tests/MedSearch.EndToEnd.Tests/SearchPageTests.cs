using System.Diagnostics;
using System.Text.Json;
using MedSearch.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The search page in a real browser: tests/browser/search-page.mjs drives Debian's chromium through
/// playwright-core against the real server over the indexed BreastMNIST images. Screenshots of each state land in
/// tests/MedSearch.EndToEnd.Tests/TestResults/browser/ (git-ignored).
/// </summary>
public sealed class SearchPageTests(IndexedCollectionFixture fixture, ITestOutputHelper output) : IClassFixture<IndexedCollectionFixture>
{
    private const string FilterLabel = "malignant";
    private static readonly string[] States = ["loaded", "results", "results-1920", "filtered", "error"];

    public static string ArtifactDirectory =>
        Path.Combine(SharedData.RepositoryRoot, "tests", "MedSearch.EndToEnd.Tests", "TestResults", "browser");

    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task Search_page_finds_the_image_filters_by_label_and_explains_a_bad_file()
    {
        Assert.True(fixture.FirstIndexRun.ExitCode == 0, fixture.FirstIndexRun.ToString());

        // A query without the filter's label: the filtered results must then visibly differ from the unfiltered.
        var query = File.ReadLines(fixture.LabelsCsv).Skip(1).Select(line => line.Split(','))
            .First(row => row[1] != FilterLabel)[0];
        var image = Path.Combine(fixture.Images, query);

        if (Directory.Exists(ArtifactDirectory)) Directory.Delete(ArtifactDirectory, recursive: true);
        Directory.CreateDirectory(ArtifactDirectory);

        await using var server = await RunningServer.StartAsync(fixture.Data, page: true);
        var printed = await BrowserScript.RunAsync("search-page.mjs", ArtifactDirectory, server.PageAddress + "/", image, FilterLabel, ArtifactDirectory);
        output.WriteLine(printed);
        foreach (var state in States)
        {
            var screenshot = Path.Combine(ArtifactDirectory, state + ".png");
            Assert.True(File.Exists(screenshot) && new FileInfo(screenshot).Length > 0, $"no screenshot {screenshot}");
        }
    }
}

/// <summary>
/// The page against a server with API keys: it asks for a key on the first refusal, asks again after a wrong one,
/// works with a read key and keeps it out of storage, cookies and the page (tests/browser/search-page-auth.mjs).
/// </summary>
public sealed class KeyedSearchPageTests(SecureServerFixture fixture, ITestOutputHelper output) : IClassFixture<SecureServerFixture>
{
    [Fact]
    public async Task The_page_asks_for_a_key_refuses_a_wrong_one_and_keeps_the_right_one_in_memory_only()
    {
        var artifacts = SearchPageTests.ArtifactDirectory + "-keyed";
        if (Directory.Exists(artifacts)) Directory.Delete(artifacts, recursive: true);
        Directory.CreateDirectory(artifacts);
        var image = Path.Combine(artifacts, "query.png");
        await File.WriteAllBytesAsync(image, fixture.Png(2));

        await using var server = await fixture.StartAsync(o => fixture.Secured(o, "http://127.0.0.1:0", http1Urls: "http://127.0.0.1:0"));
        var printed = await BrowserScript.RunAsync("search-page-auth.mjs", artifacts, server.Http1 + "/", image, fixture.ReadSecret, artifacts);
        output.WriteLine(printed);
        foreach (var state in new[] { "auth-asks", "auth-results" })
            Assert.True(File.Exists(Path.Combine(artifacts, state + ".png")), $"no screenshot {state}.png in {artifacts}");
    }
}

/// <summary>Runs a tests/browser script with node and fails the test with its output when it fails.</summary>
internal static class BrowserScript
{
    private const string Chromium = "/usr/bin/chromium";

    private static string Folder => Path.Combine(SharedData.RepositoryRoot, "tests", "browser");

    /// <returns>The script's stdout: its JSON summary line last.</returns>
    public static async Task<string> RunAsync(string script, string artifacts, params string[] args)
    {
        // Not skipped when missing: .ci/run installs both, and a developer runs it once to get them.
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: the browser test needs Debian's chromium (installed by .ci/run)");
        Assert.True(Directory.Exists(Path.Combine(Folder, "node_modules", "playwright-core")),
            "tests/browser/node_modules/playwright-core is missing: run `npm ci --prefix tests/browser` (as .ci/run does)");
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = SharedData.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(Folder, script));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"{script} ran over 3 minutes and was stopped:\n{await stderr}\n{await stdout}");
        }
        var printed = await stdout;
        Assert.True(process.ExitCode == 0, $"{script} failed ({process.ExitCode}); screenshots in {artifacts}:\n{await stderr}\n{printed}");
        using var summary = JsonDocument.Parse(printed.Trim().Split('\n')[^1]);
        Assert.True(summary.RootElement.GetProperty("ok").GetBoolean(), printed);
        return printed;
    }
}
