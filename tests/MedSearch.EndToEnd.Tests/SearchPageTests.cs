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
    private const string Chromium = "/usr/bin/chromium";
    private const string FilterLabel = "malignant";
    private static readonly string[] States = ["loaded", "results", "results-1920", "filtered", "error"];

    private static string BrowserTests => Path.Combine(SharedData.RepositoryRoot, "tests", "browser");

    public static string ArtifactDirectory =>
        Path.Combine(SharedData.RepositoryRoot, "tests", "MedSearch.EndToEnd.Tests", "TestResults", "browser");

    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task Search_page_finds_the_image_filters_by_label_and_explains_a_bad_file()
    {
        // Not skipped when missing: .ci/run installs both, and a developer runs it once to get them.
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: the browser test needs Debian's chromium (installed by .ci/run)");
        Assert.True(Directory.Exists(Path.Combine(BrowserTests, "node_modules", "playwright-core")),
            "tests/browser/node_modules/playwright-core is missing: run `npm ci --prefix tests/browser` (as .ci/run does)");
        Assert.True(fixture.FirstIndexRun.ExitCode == 0, fixture.FirstIndexRun.ToString());

        // A query without the filter's label: the filtered results must then visibly differ from the unfiltered.
        var query = File.ReadLines(fixture.LabelsCsv).Skip(1).Select(line => line.Split(','))
            .First(row => row[1] != FilterLabel)[0];
        var image = Path.Combine(fixture.Images, query);

        if (Directory.Exists(ArtifactDirectory)) Directory.Delete(ArtifactDirectory, recursive: true);
        Directory.CreateDirectory(ArtifactDirectory);

        await using var server = await RunningServer.StartAsync(fixture.Data, page: true);
        var start = new ProcessStartInfo("node")
        {
            ArgumentList = { Path.Combine(BrowserTests, "search-page.mjs"), server.PageAddress + "/", image, FilterLabel, ArtifactDirectory },
            WorkingDirectory = SharedData.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
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
            Assert.Fail($"search-page.mjs ran over 3 minutes and was stopped:\n{await stderr}\n{await stdout}");
        }

        var printed = await stdout;
        Assert.True(process.ExitCode == 0,
            $"search-page.mjs failed ({process.ExitCode}); screenshots in {ArtifactDirectory}:\n{await stderr}\n{printed}");
        output.WriteLine(printed);
        using var summary = JsonDocument.Parse(printed.Trim().Split('\n')[^1]);
        Assert.True(summary.RootElement.GetProperty("ok").GetBoolean(), printed);
        foreach (var state in States)
        {
            var screenshot = Path.Combine(ArtifactDirectory, state + ".png");
            Assert.True(File.Exists(screenshot) && new FileInfo(screenshot).Length > 0, $"no screenshot {screenshot}");
        }
    }
}
