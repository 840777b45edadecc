using MedSearch.Embedding.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace MedSearch.Embedding.Tests;

[Collection(PreparedModelCollection.Name)]
public sealed class DefaultModelTests(PreparedModelFixture fixture)
{
    private string ModelPath => fixture.Manifest.OnnxPath;

    [Fact]
    public void PreparedGraphHasSymbolicBatchAndUnitLengthRows()
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(ModelPath));
        var graph = model.Graph;
        Assert.Equal(8, model.OpsetImport.Single(o => o.Domain == "").Version);
        Assert.Equal(["image"], graph.Input.Select(i => i.Name));
        Assert.Equal(["embedding"], graph.Output.Select(o => o.Name));
        Assert.Equal(["batch", "3", "224", "224"], Dims(graph.Input[0]));
        Assert.Equal(["batch", "512"], Dims(graph.Output[0]));
        Assert.All(graph.ValueInfo, v => Assert.Equal("batch", Dims(v)[0]));

        using var session = new InferenceSession(ModelPath);
        Assert.Equal([-1, 3, 224, 224], session.InputMetadata["image"].Dimensions);
        Assert.Equal([-1, 512], session.OutputMetadata["embedding"].Dimensions);

        var random = new Random(7);
        var input = new float[3 * 3 * 224 * 224];
        for (int i = 0; i < input.Length; i++) input[i] = random.NextSingle() * 255;
        var output = Run(session, "image", input, [3, 3, 224, 224], "embedding");
        Assert.Equal(3 * 512, output.Length);
        for (int row = 0; row < 3; row++)
            Assert.Equal(1.0, TestImages.Norm(output.AsSpan(row * 512, 512)), 1e-5);
    }

    [Fact]
    public void MergedModelAgreesWithTheOriginalGraphsRunInSequence()
    {
        using var preprocess = new InferenceSession(DefaultModel.PackagedPreprocessPath);
        using var resnet = new InferenceSession(DefaultModel.PackagedResNet18Path);
        using var merged = new InferenceSession(ModelPath);
        var preprocessor = new ImagePreprocessor(fixture.Manifest);
        long[] shape = [1, 3, 224, 224];

        foreach (var image in new[] { TestImages.Phantom(300, 260, seed: 1), TestImages.Stripes(180, 200, period: 9), TestImages.Gradient(224, 224) })
        {
            var pixels = new float[preprocessor.TensorLength];
            preprocessor.Write(image, pixels);

            var prepared = Run(preprocess, "OriginalInput", pixels, shape, "PreprocessedInput");
            var features = Run(resnet, "Input247", prepared, shape, "Pooling395_Output_0");
            var expected = Normalised(features);
            var actual = Run(merged, "image", pixels, shape, "embedding");

            Assert.Equal(512, actual.Length);
            var maxDifference = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
            Assert.True(maxDifference < 1e-4f, $"merged model differs from the original graphs by up to {maxDifference}");
        }
    }

    [Fact]
    public void PreparingAgainReusesTheModelFile()
    {
        var model = new FileInfo(ModelPath);
        var manifest = new FileInfo(DefaultModel.ManifestPath(fixture.DataDir));
        var (modelWritten, manifestWritten) = (model.LastWriteTimeUtc, manifest.LastWriteTimeUtc);

        var again = DefaultModel.Prepare(fixture.DataDir);

        Assert.Equal(fixture.Manifest.Sha256, again.Sha256);
        Assert.Equal(fixture.Manifest.ModelId, again.ModelId);
        model.Refresh();
        manifest.Refresh();
        Assert.Equal(modelWritten, model.LastWriteTimeUtc);
        Assert.Equal(manifestWritten, manifest.LastWriteTimeUtc);
    }

    [Fact]
    public void CorruptModelFailsVerificationAndIsRebuiltIdentically()
    {
        var dataDir = Directory.CreateTempSubdirectory("medsearch-embedding-corrupt-").FullName;
        try
        {
            var first = DefaultModel.Prepare(dataDir);
            // The build is deterministic: the same bytes as the fixture's independently prepared model.
            Assert.Equal(fixture.Manifest.Sha256, first.Sha256);

            using (var stream = File.Open(first.OnnxPath, FileMode.Open, FileAccess.ReadWrite))
            {
                stream.Position = stream.Length / 2;
                int b = stream.ReadByte();
                stream.Position--;
                stream.WriteByte((byte)(b ^ 0xFF));
            }
            var error = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Load(DefaultModel.ManifestPath(dataDir)));
            Assert.Contains("sha256 mismatch", error.Message);
            Assert.Equal(first.OnnxPath, error.Path);

            var rebuilt = DefaultModel.Prepare(dataDir);
            Assert.Equal(first.Sha256, rebuilt.Sha256);
            Assert.Equal(first.Sha256, ModelManifest.ComputeSha256(rebuilt.OnnxPath));
            Assert.Empty(Directory.GetFiles(DefaultModel.ModelDirectory(dataDir), "*.tmp"));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static string[] Dims(ValueInfoProto value) =>
        value.Type.TensorType.Shape.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString() : d.DimParam).ToArray();

    private static float[] Run(InferenceSession session, string input, float[] data, long[] shape, string output)
    {
        using var value = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [input], [value], [output]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static float[] Normalised(float[] v)
    {
        var norm = TestImages.Norm(v);
        return v.Select(x => (float)(x / norm)).ToArray();
    }
}
