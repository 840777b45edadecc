using System.Diagnostics.Metrics;
using System.Text.Json;
using Grpc.Core;
using MedSearch.Server.Observability;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The audit file is written by a writer task of its own, in batches; these check that it loses and mangles
/// nothing on the way, also when calls outrun the disk and fill its queue.
/// </summary>
public sealed class AuditLogTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medsearch-audit-tests", Guid.NewGuid().ToString("N"));
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public AuditLogTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        _services.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private AuditLog Open(string path) => new(NullLoggerFactory.Instance, _services.GetRequiredService<IMeterFactory>(), path);

    private static AuditEntry Entry(int n) =>
        new(DateTimeOffset.UnixEpoch.AddSeconds(n), "key-1", "/medsearch.v1.SearchService/Search", StatusCode.OK, n, 1, 1, 10, 10, null);

    [Fact]
    public async Task Every_entry_is_one_whole_line_when_calls_outrun_the_writer()
    {
        var path = Path.Combine(_root, "audit.jsonl");
        const int threads = 8, perThread = 10_000;
        using (var audit = Open(path))
        {
            // Far more than the writer's queue holds, from several threads at once: some calls find it full and
            // write their own line beside the writer's batches.
            await Task.WhenAll(Enumerable.Range(0, threads).Select(t => Task.Run(() =>
            {
                for (int i = 0; i < perThread; i++) audit.Record(Entry(t * perThread + i));
            })));
        }

        var lines = File.ReadAllLines(path);
        Assert.Equal(threads * perThread, lines.Length);
        var seen = new HashSet<int>();
        foreach (var line in lines)
        {
            using var entry = JsonDocument.Parse(line);
            var root = entry.RootElement;
            Assert.Equal("/medsearch.v1.SearchService/Search", root.GetProperty("method").GetString());
            Assert.Equal("OK", root.GetProperty("status").GetString());
            Assert.True(seen.Add((int)root.GetProperty("latency_ms").GetDouble()), line);
        }
        Assert.Equal(threads * perThread, seen.Count);
    }

    [Fact]
    public void A_call_ending_after_the_log_closed_loses_its_line_without_failing()
    {
        // A call still finishing while the server stops must keep its own outcome: the audit's failure is logged.
        var path = Path.Combine(_root, "audit.jsonl");
        var audit = Open(path);
        audit.Record(Entry(1));
        audit.Dispose();
        audit.Record(Entry(2));
        Assert.Single(File.ReadAllLines(path));
    }

    [Fact]
    public async Task A_line_reaches_the_file_while_the_server_runs()
    {
        var path = Path.Combine(_root, "audit.jsonl");
        File.WriteAllText(path, "{\"earlier\":true}\n");
        using var audit = Open(path);
        audit.Record(Entry(7));

        // Not held until the log is closed: a tail of the file (an auditor's, a log shipper's) sees it.
        string[] lines = [];
        for (var waited = TimeSpan.Zero; waited < TimeSpan.FromSeconds(10) && lines.Length < 2; waited += TimeSpan.FromMilliseconds(20))
        {
            await Task.Delay(20);
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            lines = new StreamReader(stream).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        Assert.Equal(2, lines.Length);
        Assert.Equal("{\"earlier\":true}", lines[0]);
        Assert.Equal(7, JsonDocument.Parse(lines[1]).RootElement.GetProperty("latency_ms").GetDouble());
    }
}
