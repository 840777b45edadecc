using System.Diagnostics;
using System.Text.Json;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// Another implementation as the client: Python's grpcio with stubs generated from our proto at test time by
/// Debian's protoc and gRPC plugin (python3-grpc-tools' bundled protoc is too old for proto3 `optional`), driving
/// the real server through tests/python/medsearch_client.py.
/// </summary>
public sealed class PythonClientTests(SyntheticCollectionFixture fixture) : IClassFixture<SyntheticCollectionFixture>
{
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task A_python_grpcio_client_searches_classifies_and_ingests()
    {
        Assert.True(File.Exists("/usr/bin/protoc") && File.Exists("/usr/bin/grpc_python_plugin"),
            "the Python client test needs Debian's protobuf-compiler and protobuf-compiler-grpc (installed by .ci/run)");
        await using var server = await fixture.StartServerAsync();
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
            Assert.Equal(4, calls["search_image"].GetProperty("count").GetInt32());
            Assert.Equal(9, calls["classify"].GetProperty("neighbours").GetInt32());
            foreach (var label in calls["classify"].GetProperty("labels").EnumerateObject())
                Assert.Equal(label.Value.GetProperty("score").GetDouble() >= 0.5, label.Value.GetProperty("positive").GetBoolean());
            Assert.Equal("INVALID_ARGUMENT", calls["bad_k"].GetProperty("code").GetString());
            Assert.StartsWith("k:", calls["bad_k"].GetProperty("detail").GetString());
            Assert.Equal(["INGEST_OUTCOME_STORED", "INGEST_OUTCOME_STORED"], calls["ingest"].GetProperty("outcomes").EnumerateArray().Select(o => o.GetString()));
            Assert.Equal(["ingest:python/0.png", "ingest:python/1.png"], calls["ingest"].GetProperty("keys").EnumerateArray().Select(o => o.GetString()));
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }
}
