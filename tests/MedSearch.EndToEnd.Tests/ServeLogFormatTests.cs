using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Server.Observability;
using MedSearch.Server.Security;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// `medsearch serve --log-format json` as a log collector sees it: the real command as a child process, its console
/// read line by line, with API keys on so that a secret would show if it leaked into the logs.
/// </summary>
public sealed class ServeLogFormatTests : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(2);
    private readonly string _root = Directory.CreateTempSubdirectory("medsearch-logs-").FullName;
    private readonly string _model;
    private readonly string _data;
    private readonly string _keys;
    private readonly string _secret;
    private readonly byte[] _stored = CancellationEndToEndTests.Png(64, 64, seed: 2);

    public ServeLogFormatTests()
    {
        _model = TinyConvModel.Write(Path.Combine(_root, "model"));
        _data = Path.Combine(_root, "data");
        using (var collection = Collection.Open(_data, new CollectionOptions { ModelPath = _model, Encoder = new Embedding.EncoderOptions { Device = Embedding.EncoderDevice.Cpu } }))
        {
            CaseWriter.Ingest(collection, "stored/0.png", _stored, null);
            collection.Checkpoint();
        }
        _keys = Path.Combine(_root, "keys.json");
        var keys = ApiKeyStore.Load(_keys, mustExist: false);
        _secret = keys.Add("viewer", Permission.Read);
        keys.Save();
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private RunningProcess Serve(params string[] more) => MedSearchProcess.Serve(
        ["serve", "--data", _data, "--model", _model, "--device", "cpu", "--urls", "http://127.0.0.1:0", "--keys", _keys, .. more]);

    /// <summary>The gRPC address in the start-up line saying where the server listens.</summary>
    private static string Address(string listening) => Regex.Match(listening, @"http://127\.0\.0\.1:\d+").Value;

    [Fact]
    public async Task Json_logs_are_one_json_object_per_line_with_time_level_category_and_message_and_no_secret()
    {
        await using var server = Serve("--log-format", "json");
        var listening = await server.LineAsync(line => line.Contains("cases; listening on", StringComparison.Ordinal), StartTimeout);
        var address = Address(JsonDocument.Parse(listening).RootElement.GetProperty("Message").GetString()!);
        using (var channel = GrpcChannel.ForAddress(address))
        {
            var response = await new SearchService.SearchServiceClient(channel).SearchAsync(
                new SearchRequest { Image = ByteString.CopyFrom(_stored), K = 1 }, new Metadata { { "authorization", "Bearer " + _secret } });
            Assert.Single(response.Neighbours);
        }
        // The audit line of that call: the console logger writes on its own thread, so wait for it.
        await server.LineAsync(line => line.Contains(AuditLog.Category, StringComparison.Ordinal) && line.Contains("/Search", StringComparison.Ordinal), StartTimeout);

        var lines = server.Lines;
        var entries = new List<JsonElement>();
        foreach (var line in lines)
        {
            JsonElement entry;
            try
            {
                entry = JsonDocument.Parse(line).RootElement;
            }
            catch (JsonException e)
            {
                throw new Xunit.Sdk.XunitException($"not one JSON object: `{line}` ({e.Message})");
            }
            Assert.Equal(JsonValueKind.Object, entry.ValueKind);
            Assert.True(DateTimeOffset.TryParse(entry.GetProperty("Timestamp").GetString(), out _), line);
            Assert.False(string.IsNullOrEmpty(entry.GetProperty("LogLevel").GetString()), line);
            Assert.False(string.IsNullOrEmpty(entry.GetProperty("Category").GetString()), line);
            Assert.Equal(JsonValueKind.String, entry.GetProperty("Message").ValueKind);
            Assert.DoesNotContain(_secret, line, StringComparison.Ordinal);
            entries.Add(entry);
        }
        Assert.Contains(entries, e => e.GetProperty("Message").GetString()!.Contains("listening on " + address, StringComparison.Ordinal)
            && e.GetProperty("LogLevel").GetString() == "Information");
        Assert.Contains(entries, e => e.GetProperty("Category").GetString() == AuditLog.Category
            && e.GetProperty("Message").GetString()!.Contains("caller=viewer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Text_logs_are_the_default_and_are_not_json()
    {
        await using var server = Serve();
        var listening = await server.LineAsync(line => line.Contains("cases; listening on", StringComparison.Ordinal), StartTimeout);
        Assert.StartsWith("model: ", listening, StringComparison.Ordinal);
        Assert.NotEmpty(Address(listening));
        Assert.DoesNotContain(server.Lines, line => line.TrimStart().StartsWith('{'));
    }
}
