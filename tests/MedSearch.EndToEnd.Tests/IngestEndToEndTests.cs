using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The streaming Ingest over gRPC against the real server on loopback: BreastMNIST PNGs with their labels, bad
/// files and fields among them, a DICOM instance, and a restart without any checkpoint after the stream.
/// </summary>
public sealed class IngestEndToEndTests : IDisposable
{
    private const string Data = MedMnistFolder.BreastMnist;
    // More than one result group, so that results cross a checkpoint boundary.
    private const int ImageCount = CaseGrpcService.IngestResultGroup + 4;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "medsearch-ingest-" + Guid.NewGuid().ToString("N")[..8]);
    private string DataPath => Path.Combine(_root, "data");
    private string Images => Path.Combine(_root, "images");

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    /// <summary>The server, its channel and clients; disposing abandons the server, so no shutdown checkpoint runs.</summary>
    private sealed class Server : IAsyncDisposable
    {
        private readonly RunningServer _server;
        private readonly GrpcChannel _channel;

        private Server(RunningServer server)
        {
            _server = server;
            _channel = GrpcChannel.ForAddress(server.Address);
            Cases = new CaseService.CaseServiceClient(_channel);
            Search = new SearchService.SearchServiceClient(_channel);
            Collection = new CollectionService.CollectionServiceClient(_channel);
        }

        public CaseService.CaseServiceClient Cases { get; }
        public SearchService.SearchServiceClient Search { get; }
        public CollectionService.CollectionServiceClient Collection { get; }

        public static async Task<Server> StartAsync(string dataPath)
        {
            var app = MedSearchServer.Build(new ServerOptions { DataPath = dataPath, Urls = "http://127.0.0.1:0" });
            await app.StartAsync();
            return new Server(new RunningServer(app));
        }

        public async ValueTask DisposeAsync()
        {
            _channel.Dispose();
            await _server.AbandonAsync();
        }
    }

    /// <summary>Writes the BreastMNIST images and returns one request per image, labelled from labels.csv.</summary>
    private List<IngestRequest> LabelledImages()
    {
        var labels = LabelsFile.Load(MedMnistFolder.WriteBreastMnist(Images, ImageCount));
        return Enumerable.Range(0, ImageCount).Select(i =>
        {
            var name = $"train/{i:D4}.png";
            var request = new IngestRequest { Name = name, File = ByteString.CopyFrom(File.ReadAllBytes(Path.Combine(Images, name))) };
            request.Labels.Add(labels.Find(CaseId.FileKey(name))!.Labels);
            return request;
        }).ToList();
    }

    private static async Task<List<IngestResult>> IngestAsync(Server server, IEnumerable<IngestRequest> requests)
    {
        using var call = server.Cases.Ingest();
        var reading = Task.Run(async () =>
        {
            var results = new List<IngestResult>();
            await foreach (var result in call.ResponseStream.ReadAllAsync()) results.Add(result);
            return results;
        });
        foreach (var request in requests) await call.RequestStream.WriteAsync(request);
        await call.RequestStream.CompleteAsync();
        return await reading;
    }

    private static void AssertResults(IReadOnlyList<IngestRequest> sent, IReadOnlyList<IngestResult> results, IngestOutcome expected)
    {
        Assert.Equal(sent.Count, results.Count);
        for (int i = 0; i < sent.Count; i++)
        {
            var result = results[i];
            var key = "ingest:" + sent[i].Name;
            Assert.True(result.Outcome == expected, $"{sent[i].Name}: {result.Outcome} ({result.Reason}), expected {expected}");
            Assert.Equal(i, result.Sequence);
            Assert.Equal(sent[i].Name, result.Name);
            Assert.Equal(key, result.Key);
            Assert.Equal(CaseId.Format(CaseId.FromKey(key)), result.CaseId);
        }
    }

    private static IngestRequest Request(string name, byte[] file, params string[] labels)
    {
        var request = new IngestRequest { Name = name, File = ByteString.CopyFrom(file) };
        request.Labels.Add(labels);
        return request;
    }

    [SharedDataFact(Data)]
    public async Task A_stream_of_images_is_stored_in_order_found_by_search_and_survives_a_restart_without_checkpoint()
    {
        var requests = LabelledImages();
        await using (var server = await Server.StartAsync(DataPath))
        {
            AssertResults(requests, await IngestAsync(server, requests), IngestOutcome.Stored);

            var probe = requests[5];
            var response = await server.Search.SearchAsync(new SearchRequest { Image = probe.File, K = 3 });
            Assert.Equal("ingest:" + probe.Name, response.Neighbours[0].Key);
            Assert.True(response.Neighbours[0].Similarity >= 0.999f, $"self-similarity {response.Neighbours[0].Similarity}");
            Assert.Equal(probe.Labels, response.Neighbours[0].Labels);
            Assert.Equal("png", response.Neighbours[0].Metadata["format"]);
        }

        // The server checkpoints nothing on the way down: what survives is what the results acknowledged.
        await using (var reopened = await Server.StartAsync(DataPath))
        {
            Assert.Equal(ImageCount, (await reopened.Collection.StatsAsync(new StatsRequest())).Cases);
            foreach (var request in requests)
            {
                var stored = await reopened.Cases.GetAsync(new GetRequest { CaseId = "ingest:" + request.Name });
                Assert.Equal(request.Labels, stored.Labels);
                Assert.Equal(request.Name, stored.Source);
            }
        }
    }

    [SharedDataFact(Data)]
    public async Task A_clean_stop_saves_the_index_so_the_next_start_loads_it_instead_of_rebuilding()
    {
        var requests = LabelledImages();
        await using (var server = await RunningServer.StartAsync(DataPath))
        {
            using var channel = GrpcChannel.ForAddress(server.Address);
            using var call = new CaseService.CaseServiceClient(channel).Ingest();
            foreach (var request in requests) await call.RequestStream.WriteAsync(request);
            await call.RequestStream.CompleteAsync();
            int stored = 0;
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
                if (call.ResponseStream.Current.Outcome == IngestOutcome.Stored) stored++;
            Assert.Equal(ImageCount, stored);
        }
        var log = new List<string>();
        using var collection = MedSearch.Engine.Collection.Open(DataPath, new CollectionOptions(), log.Add);
        Assert.Equal(ImageCount, collection.IndexedCount);
        Assert.DoesNotContain(log, line => line.Contains("rebuilding", StringComparison.Ordinal));
    }

    [SharedDataFact(Data)]
    public async Task The_same_stream_again_is_unchanged_and_changed_labels_update_in_place()
    {
        var requests = LabelledImages();
        await using var server = await Server.StartAsync(DataPath);
        AssertResults(requests, await IngestAsync(server, requests), IngestOutcome.Stored);
        AssertResults(requests, await IngestAsync(server, requests), IngestOutcome.Unchanged);

        var relabelled = requests.Take(3).Select(r => Request(r.Name, r.File.ToByteArray(), "reviewed", "benign")).ToList();
        var results = await IngestAsync(server, relabelled);
        AssertResults(relabelled, results, IngestOutcome.Updated);
        var updated = await server.Cases.GetAsync(new GetRequest { CaseId = results[0].CaseId });
        Assert.Equal(new[] { "reviewed", "benign" }, updated.Labels);

        // Sent again without labels: the stored labels stay, and nothing is written.
        var bare = relabelled.Select(r => Request(r.Name, r.File.ToByteArray())).ToList();
        AssertResults(bare, await IngestAsync(server, bare), IngestOutcome.Unchanged);
        Assert.Equal(new[] { "reviewed", "benign" }, (await server.Cases.GetAsync(new GetRequest { CaseId = results[0].CaseId })).Labels);
        Assert.Equal(ImageCount, (await server.Collection.StatsAsync(new StatsRequest())).Cases);
    }

    [SharedDataFact(Data)]
    public async Task A_result_arrives_while_the_stream_is_still_open()
    {
        var request = LabelledImages()[0];
        await using var server = await Server.StartAsync(DataPath);
        using var call = server.Cases.Ingest();
        await call.RequestStream.WriteAsync(request);
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.True(await call.ResponseStream.MoveNext(patience.Token));
        Assert.Equal(IngestOutcome.Stored, call.ResponseStream.Current.Outcome);
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(patience.Token));
    }

    [SharedDataFact(Data)]
    public async Task Bad_files_and_fields_fail_alone_naming_why_and_store_nothing()
    {
        var good = LabelledImages();
        var png = good[0].File.ToByteArray();
        var requests = new List<IngestRequest>
        {
            good[0],
            Request("notes.txt", "not an image at all"u8.ToArray()),
            Request("broken.png", png[..(png.Length / 2)]),
            Request("", png),
            Request(new string('n', CaseGrpcService.MaxIngestNameLength + 1), png),
            Request("empty.png", []),
            Request("unlabelled.png", png, "benign", ""),
            good[1],
        };
        await using var server = await Server.StartAsync(DataPath);
        var results = await IngestAsync(server, requests);

        Assert.Equal(Enumerable.Range(0, requests.Count), results.Select(r => r.Sequence));
        Assert.Equal(
            new[] { IngestOutcome.Stored, IngestOutcome.Skipped, IngestOutcome.Failed, IngestOutcome.Failed, IngestOutcome.Failed,
             IngestOutcome.Failed, IngestOutcome.Failed, IngestOutcome.Stored },
            results.Select(r => r.Outcome));
        Assert.Contains("not a PNG, JPEG or DICOM image", results[1].Reason);
        Assert.Contains("truncated", results[2].Reason);
        Assert.StartsWith("name:", results[3].Reason);
        Assert.StartsWith("name:", results[4].Reason);
        Assert.StartsWith("file:", results[5].Reason);
        Assert.StartsWith("labels:", results[6].Reason);
        Assert.All(results.Where(r => r.Outcome is IngestOutcome.Skipped or IngestOutcome.Failed), r => Assert.Equal("", r.Key));

        Assert.Equal(2, (await server.Collection.StatsAsync(new StatsRequest())).Cases);
        foreach (var name in new[] { "notes.txt", "broken.png", "empty.png", "unlabelled.png" })
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await server.Cases.GetAsync(new GetRequest { CaseId = "ingest:" + name }));
            Assert.Equal(StatusCode.NotFound, e.StatusCode);
        }
    }

    [SharedDataFact("dicom")]
    public async Task A_dicom_file_is_keyed_by_its_sop_instance_uid_with_its_header_facts()
    {
        const string uid = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322";
        var file = await File.ReadAllBytesAsync(Path.Combine(SharedData.Require("dicom"), "pydicom", "test_files", "CT_small.dcm"));
        var request = Request("exports/ct.dcm", file, "reviewed");
        request.Metadata["site"] = "north";
        await using var server = await Server.StartAsync(DataPath);

        var result = Assert.Single(await IngestAsync(server, [request]));
        Assert.True(result.Outcome == IngestOutcome.Stored, $"{result.Outcome}: {result.Reason}");
        Assert.Equal(CaseId.SopKey(uid), result.Key);
        Assert.Equal(CaseId.Format(CaseId.FromKey(CaseId.SopKey(uid))), result.CaseId);

        var stored = await server.Cases.GetAsync(new GetRequest { CaseId = uid });
        Assert.Equal("CT", stored.Metadata["modality"]);
        Assert.Equal("north", stored.Metadata["site"]);
        Assert.Equal(new[] { "reviewed" }, stored.Labels);
        Assert.DoesNotContain(stored.Metadata.Keys, k => k.Contains("patient_id") || k.Contains("patient_name"));
    }
}
