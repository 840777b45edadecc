using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Net.Client;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// Encoders other than the built-in one, through the real CLI and server: a model built by the test itself
/// (<see cref="TinyConvModel"/>), the record of it in collection.json, the refusal of another model, and
/// `medsearch reindex` from one model to another.
/// </summary>
public sealed class ModelEndToEndTests : IDisposable
{
    private const string Data = MedMnistFolder.BreastMnist;
    private static readonly EncoderOptions Cpu = new() { Device = EncoderDevice.Cpu };

    private readonly string _root = Path.Combine(Path.GetTempPath(), "medsearch-models-" + Guid.NewGuid().ToString("N")[..8]);
    private string Images => Path.Combine(_root, "images");
    private string ModelFolder => Path.Combine(_root, "tiny-model");

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private string ImagePath(int i) => Path.Combine(Images, "train", $"{i:D4}.png");

    private static async Task<RunningServer> StartServerAsync(string data, string? model)
    {
        var app = MedSearchServer.Build(new ServerOptions
        {
            DataPath = data,
            Urls = "http://127.0.0.1:0",
            Collection = new CollectionOptions { ModelPath = model, Encoder = Cpu },
        });
        await app.StartAsync();
        return new RunningServer(app);
    }

    [SharedDataFact(Data)]
    public async Task A_model_built_here_indexes_and_searches_and_a_run_with_the_default_model_is_refused()
    {
        const int count = 50;
        var labelsCsv = MedMnistFolder.WriteBreastMnist(Images, count);
        var manifestPath = TinyConvModel.Write(ModelFolder);
        var data = Path.Combine(_root, "data");

        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", Images, "--labels", labelsCsv, "--data", data,
            "--model", ModelFolder, "--device", "cpu", "--batch", "8", "--batch-wait", "5");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"indexed:   {count}", run.Output);
        Assert.Matches(@"model: tiny-conv-[0-9a-f]{16} \(64-d\), device: CPU", run.Output);

        // collection.json names everything that made the vectors.
        var settings = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(data, "collection.json")))!;
        Assert.Equal(2, (int)settings["format"]!);
        Assert.Equal(64, (int)settings["dimensions"]!);
        var encoder = settings["encoder"]!;
        Assert.Equal(manifestPath, (string?)encoder["modelPath"]);
        Assert.Equal(ModelManifest.ComputeSha256(Path.Combine(ModelFolder, "model.onnx")), (string?)encoder["manifest"]!["sha256"]);
        Assert.Equal("bicubic", (string?)encoder["manifest"]!["resizeMethod"]);
        Assert.Equal(ImageEncoder.OnnxRuntimeVersion, (string?)encoder["onnxRuntime"]);
        Assert.Equal("ORT_ENABLE_ALL", (string?)encoder["graphOptimization"]);
        Assert.Equal("CPUExecutionProvider", (string?)encoder["executionProvider"]);

        await using (var server = await StartServerAsync(data, ModelFolder))
        {
            using var channel = GrpcChannel.ForAddress(server.Address);
            var client = new SearchService.SearchServiceClient(channel);
            for (int i = 0; i < count; i++)
            {
                var response = await client.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(await File.ReadAllBytesAsync(ImagePath(i))), K = 3 });
                var top = response.Neighbours[0];
                Assert.Equal(CaseId.FileKey($"train/{i:D4}.png"), top.Key);
                Assert.True(top.Similarity >= 0.999f, $"image {i}: self-similarity {top.Similarity}");
                Assert.StartsWith("tiny-conv-", response.ModelId);
            }
        }
        using (var collection = Collection.Open(data, new CollectionOptions { ModelPath = manifestPath, Encoder = Cpu }))
        {
            Assert.Equal(count, collection.Count);
            Assert.All(collection.Cases(), c => Assert.Equal(64, c.Embedding.Count));
        }

        // The built-in model's vectors cannot be compared with these: index and serve both refuse, saying which model to use.
        var index = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "index", Images, "--data", data);
        Assert.True(index.ExitCode == 1, index.ToString());
        Assert.Contains("was built with model tiny-conv-", index.Error);
        Assert.Contains($"--model {manifestPath}", index.Error);
        Assert.Contains("but this run uses resnet18-imagenet-", index.Error);
        Assert.Contains("embeddings of different models are not comparable", index.Error);

        var serve = Assert.Throws<ModelMismatchException>(() => MedSearchServer.Build(new ServerOptions { DataPath = data, Urls = "http://127.0.0.1:0" }));
        Assert.Contains("(512-d, the built-in ResNet18)", serve.Message);

        // Deleting (a patient's withdrawal, say) works on such a collection when its model is named, as for index.
        var key = CaseId.FileKey("train/0007.png");
        var refused = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "delete", "--case", key, "--data", data);
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains($"--model {manifestPath}", refused.Error);
        var delete = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "delete", "--case", key, "--data", data, "--model", ModelFolder, "--device", "cpu");
        Assert.True(delete.ExitCode == 0, delete.ToString());
        Assert.Contains($"deleted 1 case(s) matching --case {key}; {count - 1} cases remain", delete.Output);
    }

    [SharedDataFact(Data)]
    public async Task Reindex_re_embeds_every_case_with_the_new_model_and_names_the_files_it_could_not_read()
    {
        const int count = 30;
        var labelsCsv = MedMnistFolder.WriteBreastMnist(Images, count);
        var manifestPath = TinyConvModel.Write(ModelFolder);
        var old = Path.Combine(_root, "old");
        var fresh = Path.Combine(_root, "new");
        var index = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", Images, "--labels", labelsCsv, "--data", old);
        Assert.True(index.ExitCode == 0, index.ToString());

        // The store keeps no pixels: a deleted or overwritten file cannot be re-embedded as the case it was.
        File.Delete(ImagePath(3));
        File.Copy(ImagePath(10), ImagePath(4), overwrite: true);

        var reindex = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "reindex", "--data", old, "--to", fresh,
            "--model", manifestPath, "--device", "cpu", "--batch", "4");
        Assert.True(reindex.ExitCode == 3, reindex.ToString());
        Assert.Contains($"re-embedded:  {count - 2}", reindex.Output);
        Assert.Contains("failed:       2", reindex.Output);
        Assert.Matches(@"train/0003\.png: its file is gone", reindex.Output);
        Assert.Matches(@"train/0004\.png: its file changed since it was indexed", reindex.Output);

        Dictionary<string, Storage.Records.CaseRecord> before;
        using (var collection = Collection.Open(old, new CollectionOptions { Encoder = Cpu }))
        {
            // The old directory is untouched and still serves the old model.
            Assert.Equal(count, collection.Count);
            before = collection.Cases().ToDictionary(c => c.Key);
        }
        using (var collection = Collection.Open(fresh, new CollectionOptions { ModelPath = ModelFolder, Encoder = Cpu }))
        {
            Assert.Equal(count - 2, collection.Count);
            foreach (var record in collection.Cases())
            {
                var was = before[record.Key];
                Assert.Equal(64, record.Embedding.Count);
                Assert.Equal(collection.ModelId, record.ModelId);
                Assert.Equal(was.Labels, record.Labels);
                Assert.Equal(was.Metadata, record.Metadata);
                Assert.Equal((was.Id, was.Source, was.ContentSha256), (record.Id, record.Source, record.ContentSha256));
                // The new vector is the new model's vector of the same file.
                var image = ImageReader.Read(await File.ReadAllBytesAsync(record.Source), record.Source, collection.ReadOptions).Frames[0].Image;
                Assert.Equal(collection.Embed(image), record.Embedding.ToArray());
            }
        }

        var again = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "reindex", "--data", old, "--to", fresh, "--model", ModelFolder, "--device", "cpu");
        Assert.True(again.ExitCode == 3, again.ToString());
        Assert.Contains("re-embedded:  0", again.Output);
        Assert.Contains($"already done: {count - 2}", again.Output);

        var wrongModel = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "reindex", "--data", old, "--to", fresh);
        Assert.True(wrongModel.ExitCode == 1, wrongModel.ToString());
        Assert.Contains("embeddings of different models are not comparable", wrongModel.Error);
    }

    [Fact]
    public void Collection_json_of_format_1_is_completed_and_a_changed_runtime_is_logged()
    {
        var data = Path.Combine(_root, "data");
        var settingsPath = Path.Combine(data, "collection.json");
        var options = new CollectionOptions { ModelPath = TinyConvModel.Write(ModelFolder), Encoder = Cpu };
        Collection.Open(data, options).Dispose();
        var current = JsonNode.Parse(File.ReadAllText(settingsPath))!.AsObject();

        // Format 1 knew only the model id; a run with that model fills in the rest.
        var formatOne = new JsonObject { ["format"] = 1, ["modelId"] = (string?)current["modelId"], ["dimensions"] = 64, ["createdUtc"] = (string?)current["createdUtc"] };
        File.WriteAllText(settingsPath, formatOne.ToJsonString());
        var log = new List<string>();
        Collection.Open(data, options, log.Add).Dispose();
        Assert.Contains(log, line => line.Contains("upgraded to format 2"));
        Assert.Equal(current.ToJsonString(), JsonNode.Parse(File.ReadAllText(settingsPath))!.ToJsonString());

        // Vectors stored by another ONNX Runtime stay comparable, but may differ in their last bits: said, not refused.
        current["encoder"]!["onnxRuntime"] = "1.17.0";
        File.WriteAllText(settingsPath, current.ToJsonString());
        log.Clear();
        Collection.Open(data, options, log.Add).Dispose();
        Assert.Contains(log, line => line.Contains("the stored vectors were made with ONNX Runtime 1.17.0, ORT_ENABLE_ALL, CPUExecutionProvider") &&
                                     line.Contains($"this run uses ONNX Runtime {ImageEncoder.OnnxRuntimeVersion}"));
    }

    [Fact]
    public async Task Bad_model_and_device_options_are_named()
    {
        var data = Path.Combine(_root, "data");
        Directory.CreateDirectory(Images);
        var noModel = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "index", Images, "--data", data, "--model", Path.Combine(_root, "nope"));
        Assert.True(noModel.ExitCode == 1, noModel.ToString());
        Assert.Contains("no such model: neither a model folder nor a manifest.json file", noModel.Error);

        var badDevice = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "index", Images, "--data", data, "--device", "gpu0");
        Assert.Equal(2, badDevice.ExitCode);
        Assert.Contains("device must be auto, cpu, cuda or cuda:N", badDevice.Error);
        Assert.Contains("`gpu0`", badDevice.Error);

        var help = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "reindex", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("usage: medsearch reindex --to NEW", help.Output);
    }
}
