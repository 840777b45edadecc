using System.Text.Json.Nodes;
using MedSearch.Tests.Support;

namespace MedSearch.Embedding.Tests;

public sealed class ModelManifestTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("medsearch-manifest-tests-").FullName;

    private string ManifestPath => Path.Combine(_dir, ModelManifest.FileName);
    private string ModelPath => Path.Combine(_dir, "model.onnx");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ModelManifest SaveValid()
    {
        File.WriteAllBytes(ModelPath, [1, 2, 3, 4]);
        var manifest = ManifestFactory.Create(sha256: ModelManifest.ComputeSha256(ModelPath));
        manifest.Save(ManifestPath);
        return manifest;
    }

    [Fact]
    public void SavedManifestLoadsBackWithCamelCaseJson()
    {
        var saved = SaveValid();
        var json = JsonNode.Parse(File.ReadAllText(ManifestPath))!.AsObject();
        Assert.Equal("0-255", (string?)json["scale"]);
        Assert.Equal("replicate", (string?)json["greyMode"]);
        Assert.Equal("bilinear", (string?)json["resizeMethod"]);
        Assert.True((bool?)json["l2Normalize"]);
        Assert.False(json.ContainsKey("modelId"));

        var loaded = ModelManifest.Load(ManifestPath);
        Assert.Equal(saved.Sha256, loaded.Sha256);
        Assert.Equal(saved.Mean, loaded.Mean);
        Assert.Equal(ModelPath, loaded.OnnxPath);
        Assert.Equal(ManifestPath, loaded.ManifestPath);
        Assert.Equal($"test-model-{saved.Sha256[..16]}", loaded.ModelId);
    }

    [Fact]
    public void ChangedModelFileIsReportedAsShaMismatch()
    {
        var saved = SaveValid();
        File.WriteAllBytes(ModelPath, [1, 2, 3, 5]);
        var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Equal(ModelPath, error.Path);
        Assert.Contains("sha256 mismatch", error.Message);
        Assert.Contains(saved.Sha256, error.Message);
    }

    [Fact]
    public void MissingModelFileIsNamed()
    {
        SaveValid();
        File.Delete(ModelPath);
        var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Contains("'model.onnx'", error.Message);
        Assert.Contains("does not exist", error.Message);
    }

    [Fact]
    public void MissingManifestIsReported()
    {
        var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Contains("manifest not found", error.Message);
    }

    [Theory]
    [InlineData("inputName")]
    [InlineData("l2Normalize")]
    [InlineData("sha256")]
    public void MissingFieldIsNamed(string field)
    {
        SaveValid();
        var json = JsonNode.Parse(File.ReadAllText(ManifestPath))!.AsObject();
        json.Remove(field);
        File.WriteAllText(ManifestPath, json.ToJsonString());
        var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Contains(field, error.Message);
        Assert.Equal(ManifestPath, error.Path);
    }

    [Fact]
    public void NullFieldIsRejected()
    {
        SaveValid();
        var json = JsonNode.Parse(File.ReadAllText(ManifestPath))!.AsObject();
        json["name"] = null;
        File.WriteAllText(ManifestPath, json.ToJsonString());
        var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Contains("name", error.Message);
    }

    [Fact]
    public void InvalidValuesAreAllNamed()
    {
        SaveValid();
        var json = JsonNode.Parse(File.ReadAllText(ManifestPath))!.AsObject();
        json["mean"] = new JsonArray(0.5, 0.5);
        json["std"] = new JsonArray(1, 0, 1);
        json["inputWidth"] = 0;
        File.WriteAllText(ManifestPath, json.ToJsonString());
        var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Contains("'mean' must have one value per channel (3), got 2", error.Message);
        Assert.Contains("'std' values must be finite and positive", error.Message);
        Assert.Contains("'inputWidth' must be 1..8192, got 0", error.Message);
    }

    [Fact]
    public void UnknownEnumValueIsRejected()
    {
        SaveValid();
        var json = JsonNode.Parse(File.ReadAllText(ManifestPath))!.AsObject();
        json["scale"] = "0-65535";
        File.WriteAllText(ManifestPath, json.ToJsonString());
        var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Contains("scale", error.Message);
    }

    [Fact]
    public void MalformedJsonIsReported()
    {
        SaveValid();
        File.WriteAllText(ManifestPath, "{ \"name\": ");
        var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Contains("not a valid model manifest", error.Message);
    }

    [Fact]
    public void ShippedMedImageInsightManifestDescribesItsPublishedPreprocessing()
    {
        var shipped = Path.Combine(SharedData.RepositoryRoot, "models", "medimageinsight", ModelManifest.FileName);
        File.Copy(shipped, ManifestPath);
        File.WriteAllBytes(ModelPath, [1, 2, 3, 4]);

        // As shipped it cannot know the hash of a file its owner exports later, and says what to do.
        var unset = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(ManifestPath));
        Assert.Contains("'sha256' is still the placeholder of zeros", unset.Message);
        Assert.Contains("sha256sum model.onnx", unset.Message);

        var json = JsonNode.Parse(File.ReadAllText(ManifestPath))!.AsObject();
        json["sha256"] = ModelManifest.ComputeSha256(ModelPath);
        File.WriteAllText(ManifestPath, json.ToJsonString());
        var manifest = ModelManifest.Load(ManifestPath);
        // MedImageInsight's eval transform: Resize((480, 480), BICUBIC), ToTensor, ImageNet Normalize; grey
        // images are converted to RGB; encode_image returns L2-normalised 1024-d projections.
        Assert.Equal((480, 480), (manifest.InputWidth, manifest.InputHeight));
        Assert.Equal(ResizeMethod.Bicubic, manifest.ResizeMethod);
        Assert.Equal(PixelScale.Unit, manifest.Scale);
        Assert.Equal(GreyMode.Replicate, manifest.GreyMode);
        Assert.Equal([0.485f, 0.456f, 0.406f], manifest.Mean);
        Assert.Equal([0.229f, 0.224f, 0.225f], manifest.Std);
        Assert.Equal(1024, manifest.EmbeddingDimension);
        Assert.True(manifest.L2Normalize);
        Assert.Equal(("image", "embedding"), (manifest.InputName, manifest.OutputName));
    }

    [Fact]
    public void ToJsonIsTheSavedForm()
    {
        var saved = SaveValid();
        Assert.Equal(JsonNode.Parse(File.ReadAllText(ManifestPath))!.ToJsonString(), saved.ToJson().ToJsonString());
    }

    [Theory]
    [InlineData("auto", EncoderDevice.Auto, 0)]
    [InlineData("cpu", EncoderDevice.Cpu, 0)]
    [InlineData("CUDA", EncoderDevice.Cuda, 0)]
    [InlineData("cuda:3", EncoderDevice.Cuda, 3)]
    public void DeviceNamesParse(string text, EncoderDevice device, int id)
    {
        var options = new EncoderOptions { MaxBatchSize = 7 }.WithDevice(text);
        Assert.Equal((device, id, 7), (options.Device, options.DeviceId, options.MaxBatchSize));
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    public void BadDeviceNamesAreRefusedQuotingThem(string text)
    {
        var error = Assert.Throws<FormatException>(() => new EncoderOptions().WithDevice(text));
        Assert.Contains($"`{text}`", error.Message);
        Assert.Contains("auto, cpu, cuda or cuda:N", error.Message);
    }

    [Fact]
    public void InvalidManifestIsNotSaved()
    {
        var manifest = ManifestFactory.Create(std: [1, 1, -1]);
        var error = Assert.Throws<EmbeddingModelException>(() => manifest.Save(ManifestPath));
        Assert.Contains("'std'", error.Message);
        Assert.False(File.Exists(ManifestPath));
    }
}
