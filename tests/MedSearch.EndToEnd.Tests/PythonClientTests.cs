using System.Diagnostics;
using System.Text.Json;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// Another implementation as the client: Python's grpcio with stubs generated from our proto at test time by
/// Debian's protoc and gRPC plugin (python3-grpc-tools' bundled protoc is too old for proto3 `optional`), driving
/// the real server through tests/python/medsearch_client.py; the same script then calls the JSON transcoding routes
/// with nothing but Python's standard library (urllib, json), which must agree with the gRPC answers.
/// </summary>
public sealed class PythonClientTests(SyntheticCollectionFixture fixture) : IClassFixture<SyntheticCollectionFixture>
{
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task A_python_grpcio_client_searches_classifies_and_ingests()
    {
        Assert.True(File.Exists("/usr/bin/protoc") && File.Exists("/usr/bin/grpc_python_plugin"),
            "the Python client test needs Debian's protobuf-compiler and protobuf-compiler-grpc (installed by .ci/run)");
        // With the HTTP/1.1 listener too: the JSON transcoding routes are served there.
        await using var server = await RunningServer.StartAsync(fixture.Data, page: true);
        var work = Directory.CreateTempSubdirectory("medsearch-python-");
        try
        {
            var query = fixture.Records.First(r => r.Metadata["modality"] == "CT");
            var start = new ProcessStartInfo(Python)
            {
                ArgumentList =
                {
                    Path.Combine(SharedData.RepositoryRoot, "tests", "python", "medsearch_client.py"),
                    new Uri(server.Address).Authority,
                    Path.Combine(SharedData.RepositoryRoot, "proto"),
                    work.FullName,
                    query.Key,
                    server.PageAddress,
                },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
            Assert.True(process.ExitCode == 0, $"python client failed ({process.ExitCode}):\n{await stderr}\n{await stdout}");
            var calls = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => JsonDocument.Parse(line).RootElement)
                .ToDictionary(e => e.GetProperty("call").GetString()!);

            Assert.Equal(SyntheticCollectionFixture.Cases, calls["stats"].GetProperty("cases").GetInt64());
            Assert.All(calls["search_case"].GetProperty("modalities").EnumerateArray(), m => Assert.Equal("CT", m.GetString()));
            Assert.Equal(5, calls["search_case"].GetProperty("keys").GetArrayLength());
            Assert.Equal(query.Key, calls["search_embedding"].GetProperty("keys")[0].GetString());
            Assert.True(calls["search_embedding"].GetProperty("similarities")[0].GetDouble() > 0.999);

            // Classify: the decisions are the softmax-weighted vote of the very neighbours it returned, the query left out.
            var classify = calls["classify"];
            var neighbours = Evidence(classify);
            Assert.Equal(9, neighbours.Count);
            Assert.DoesNotContain(query.Key, neighbours.Select(n => n.Key));
            AssertVote(Vote(neighbours, n => Math.Exp(n.Similarity / 0.05)), classify);

            Assert.Equal("INVALID_ARGUMENT", calls["bad_k"].GetProperty("code").GetString());
            Assert.StartsWith("k:", calls["bad_k"].GetProperty("detail").GetString());
            Assert.Equal(["INGEST_OUTCOME_STORED", "INGEST_OUTCOME_STORED"], calls["ingest"].GetProperty("outcomes").EnumerateArray().Select(o => o.GetString()));
            Assert.Equal(["ingest:python/0.png", "ingest:python/1.png"], calls["ingest"].GetProperty("keys").EnumerateArray().Select(o => o.GetString()));

            // The first ingested image, sent again as a query, finds itself first, as good as identical.
            var byImage = Evidence(calls["search_image"]);
            Assert.Equal(4, byImage.Count);
            Assert.Equal("ingest:python/0.png", byImage[0].Key);
            Assert.True(byImage[0].Similarity > 0.999, $"the image's similarity to itself is {byImage[0].Similarity}");
            Assert.Equal(["from-python"], byImage[0].Labels);
            Assert.NotEmpty(calls["search_image"].GetProperty("model_id").GetString()!);

            // Plain HTTP/JSON through transcoding: the same neighbours, in the same order, as over gRPC.
            Assert.Equal(Keys(calls["search_case"]), Keys(calls["json_search_case"]));
            Assert.All(calls["json_search_case"].GetProperty("modalities").EnumerateArray(), m => Assert.Equal("CT", m.GetString()));
            Assert.Equal(Keys(calls["search_embedding"]), Keys(calls["json_search_embedding"]));
            Assert.Equal(
                calls["search_embedding"].GetProperty("similarities").EnumerateArray().Select(v => v.GetDouble()),
                calls["json_search_embedding"].GetProperty("similarities").EnumerateArray().Select(v => v.GetDouble()),
                (a, b) => Math.Abs(a - b) < 1e-6);
            var jsonClassify = calls["json_classify"];
            var jsonNeighbours = Evidence(jsonClassify);
            Assert.Equal(neighbours.Select(n => n.Key), jsonNeighbours.Select(n => n.Key));
            // Uniform weighting: a label's score is the fraction of the labelled neighbours that carry it.
            AssertVote(Vote(jsonNeighbours, _ => 1), jsonClassify);
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    private sealed record Hit(string Key, double Similarity, string[] Labels);

    private static string[] Keys(JsonElement call) => call.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!).ToArray();

    private static List<Hit> Evidence(JsonElement call) => call.GetProperty("neighbours").EnumerateArray()
        .Select(n => new Hit(n.GetProperty("key").GetString()!, n.GetProperty("similarity").GetDouble(),
            n.GetProperty("labels").EnumerateArray().Select(l => l.GetString()!).ToArray()))
        .ToList();

    /// <summary>
    /// The oracle for Classify: each label's score is the weight of the labelled neighbours carrying it over the
    /// weight of all labelled neighbours (unlabelled ones do not vote).
    /// </summary>
    private static Dictionary<string, double> Vote(List<Hit> neighbours, Func<Hit, double> weight)
    {
        var labelled = neighbours.Where(n => n.Labels.Length > 0).ToList();
        double total = labelled.Sum(weight);
        return labelled.SelectMany(n => n.Labels.Distinct()).Distinct()
            .ToDictionary(label => label, label => labelled.Where(n => n.Labels.Contains(label)).Sum(weight) / total);
    }

    private static void AssertVote(Dictionary<string, double> expected, JsonElement call)
    {
        var labels = call.GetProperty("labels").EnumerateObject().ToDictionary(l => l.Name, l => l.Value);
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Keys.Order(), labels.Keys.Order());
        foreach (var (label, score) in expected)
        {
            var decision = labels[label];
            Assert.True(Math.Abs(score - decision.GetProperty("score").GetDouble()) < 1e-9,
                $"{label}: the vote gives {score}, the server {decision.GetProperty("score").GetDouble()}");
            Assert.Equal(0.5, decision.GetProperty("threshold").GetDouble());
            Assert.Equal(score >= 0.5, decision.GetProperty("positive").GetBoolean());
        }
    }
}
