using MedSearch.Server;
using MedSearch.Server.Security;
using Microsoft.Extensions.DependencyInjection;
using MedSearch.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// ~200 BreastMNIST PNGs indexed once by the real `medsearch index` into a temporary data directory, shared by
/// the tests of one class. Servers are started per test so that tests needing the directory's write lock can
/// run in between.
/// </summary>
public sealed class IndexedCollectionFixture : IAsyncLifetime
{
    public const int ImageCount = 200;

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "medsearch-e2e-" + Guid.NewGuid().ToString("N")[..8]);
    public string Images => Path.Combine(Root, "images");
    public string Data => Path.Combine(Root, "data");
    public string LabelsCsv { get; private set; } = "";
    public CliResult FirstIndexRun { get; private set; } = null!;
    public bool Available { get; private set; }

    public async Task InitializeAsync()
    {
        if (SharedData.SkipReason(MedMnistFolder.BreastMnist) is not null) return;
        Directory.CreateDirectory(Images);
        LabelsCsv = MedMnistFolder.WriteBreastMnist(Images, ImageCount);
        FirstIndexRun = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", Images, "--labels", LabelsCsv, "--data", Data);
        Available = true;
    }

    /// <summary>Starts the real server on a free loopback port over the fixture's data directory.</summary>
    public Task<RunningServer> StartServerAsync() => RunningServer.StartAsync(Data);

    public Task DisposeAsync()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}

public sealed class RunningServer(WebApplication app) : IAsyncDisposable
{
    /// <summary>
    /// Starts the real server on a free loopback port over <paramref name="dataPath"/>; with <paramref name="page"/>
    /// also an HTTP/1.1 port for browsers (the search page and JSON routes), at <see cref="PageAddress"/>.
    /// </summary>
    public static async Task<RunningServer> StartAsync(string dataPath, bool page = false)
    {
        var app = MedSearchServer.Build(new ServerOptions
        {
            DataPath = dataPath, Urls = "http://127.0.0.1:0", Http1Urls = page ? "http://127.0.0.1:0" : null,
        });
        await app.StartAsync();
        return new RunningServer(app);
    }

    private readonly Listeners _listeners = app.Services.GetRequiredService<Listeners>();

    public string Address => _listeners.Urls(ListenerRole.Grpc).Single();

    /// <summary>The HTTP/1.1 listener, when started with a page.</summary>
    public string PageAddress => _listeners.Urls(ListenerRole.Http1).Single();

    /// <summary>Stops the server cleanly (it checkpoints on the way down), then releases it.</summary>
    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    /// <summary>Releases the server without stopping it: as after a crash, no shutdown checkpoint runs.</summary>
    public ValueTask AbandonAsync() => app.DisposeAsync();
}
