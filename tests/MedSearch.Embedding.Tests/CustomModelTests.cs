using MedSearch.Imaging;
using MedSearch.Tests.Support;

namespace MedSearch.Embedding.Tests;

/// <summary>A model that is not the built-in one, described only by its manifest: <see cref="TinyConvModel"/>.</summary>
public sealed class CustomModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("medsearch-custom-model-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly EncoderOptions Cpu = new() { Device = EncoderDevice.Cpu };

    private static PixelImage[] Images() =>
    [
        TestImages.Phantom(512, 512, seed: 31),
        TestImages.Stripes(300, 200, period: 12),
        TestImages.Gradient(97, 143),
        TestImages.Phantom(28, 28, seed: 32),
        TestImages.WithNoise(TestImages.Gradient(96, 96), sigma: 20, seed: 3),
        TestImages.Phantom(1000, 800, seed: 33),
        TestImages.Stripes(64, 640, period: 5),
    ];

    [Fact]
    public void ManifestModelEmbedsUnitLengthVectorsOfItsOwnDimension()
    {
        var folder = Path.Combine(_dir, "tiny");
        TinyConvModel.Write(folder);
        // A folder is as good as the manifest inside it.
        using var encoder = ImageEncoder.Open(ModelManifest.Resolve(folder), Cpu);
        Assert.Equal(64, encoder.Dimensions);
        Assert.Equal(3 * 96 * 96, encoder.InputLength);
        Assert.StartsWith("tiny-conv-", encoder.Manifest.ModelId);
        Assert.Equal("CPUExecutionProvider", encoder.ExecutionProvider);

        var images = Images();
        var vectors = new float[images.Length * 64];
        encoder.Embed(images, vectors);
        for (int i = 0; i < images.Length; i++)
            Assert.Equal(1.0, TestImages.Norm(vectors.AsSpan(i * 64, 64)), 1e-6);
        // Different pictures, different vectors: the weights are not degenerate.
        Assert.True(TestImages.Cosine(vectors.AsSpan(0, 64), vectors.AsSpan(64, 64)) < 0.999f);
    }

    [Fact]
    public void VectorsAreBitIdenticalAcrossBatchSizesAndInstances()
    {
        var manifest = TinyConvModel.Write(Path.Combine(_dir, "tiny"));
        var images = Images();
        float[] Embed(int maxBatch)
        {
            using var encoder = ImageEncoder.Open(manifest, Cpu with { MaxBatchSize = maxBatch });
            var vectors = new float[images.Length * 64];
            encoder.Embed(images, vectors);
            return vectors;
        }
        var reference = Embed(1);
        foreach (int batch in new[] { 2, 3, 7, 32 })
            Assert.True(reference.AsSpan().SequenceEqual(Embed(batch)), $"batch {batch} differs from batch 1");
    }

    [Fact]
    public void PreprocessedInputGivesTheSameVectorsAsImages()
    {
        using var encoder = ImageEncoder.Open(TinyConvModel.Write(Path.Combine(_dir, "tiny")), Cpu with { MaxBatchSize = 3 });
        var images = Images();
        var input = new float[images.Length * encoder.InputLength];
        for (int i = 0; i < images.Length; i++)
            encoder.Preprocess(images[i], input.AsSpan(i * encoder.InputLength, encoder.InputLength));
        var fromInput = new float[images.Length * 64];
        var fromImages = new float[images.Length * 64];
        Assert.Equal(fromInput.Length, encoder.EmbedPreprocessed(input, images.Length, fromInput));
        encoder.Embed(images, fromImages);
        Assert.Equal(fromImages, fromInput);

        var error = Assert.Throws<ArgumentException>(() => encoder.EmbedPreprocessed(new float[encoder.InputLength], 2, fromInput));
        Assert.Contains("2 preprocessed images need 55296", error.Message);
    }

    [Fact]
    public void ModelExportedWithAFixedBatchOfOneRunsOneImageAtATime()
    {
        var dynamic = TinyConvModel.Write(Path.Combine(_dir, "dynamic"));
        var fixedOne = TinyConvModel.Write(Path.Combine(_dir, "fixed"), batch: 1);
        using var a = ImageEncoder.Open(dynamic, Cpu);
        using var b = ImageEncoder.Open(fixedOne, Cpu);
        var images = Images();
        var va = new float[images.Length * 64];
        var vb = new float[images.Length * 64];
        a.Embed(images, va);
        b.Embed(images, vb);
        Assert.Equal(va, vb);
    }

    [Fact]
    public void ManifestThatDoesNotDescribeTheGraphIsRefusedNamingTheDifference()
    {
        var folder = Path.Combine(_dir, "tiny");
        var manifestPath = TinyConvModel.Write(folder);
        var manifest = ModelManifest.Load(manifestPath);

        void Expect(ModelManifest wrong, string reason)
        {
            wrong.Save(manifestPath);
            var error = Assert.Throws<EmbeddingModelException>(() => ImageEncoder.Open(manifestPath, Cpu));
            Assert.Contains(reason, error.Message);
        }

        Expect(With(manifest, inputSize: 224), "input 'pixels' is Float [-1,3,96,96], the manifest describes float [batch,3,224,224]");
        Expect(With(manifest, dimension: 512), "output 'features' is Float [-1,64], the manifest describes float [batch,512]");
        Expect(With(manifest, inputName: "image"), "the manifest's input 'image' is not a model input (inputs: pixels)");
    }

    [Fact]
    public void ModelOptionResolvesFoldersAndFilesAndNamesWhatIsMissing()
    {
        var folder = Path.Combine(_dir, "tiny");
        var manifest = TinyConvModel.Write(folder);
        Assert.Equal(manifest, ModelManifest.Resolve(folder));
        Assert.Equal(manifest, ModelManifest.Resolve(manifest));

        var empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        var noManifest = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Resolve(empty));
        Assert.Contains("this model folder has no manifest.json", noManifest.Message);
        var nothing = Assert.Throws<EmbeddingModelException>(() => ModelManifest.Resolve(Path.Combine(_dir, "nope")));
        Assert.Contains("no such model", nothing.Message);
        Assert.Equal(Path.Combine(_dir, "nope"), nothing.Path);
    }

    private static ModelManifest With(ModelManifest m, int? inputSize = null, int? dimension = null, string? inputName = null) => new()
    {
        Name = m.Name,
        Version = m.Version,
        OnnxFile = m.OnnxFile,
        InputName = inputName ?? m.InputName,
        OutputName = m.OutputName,
        InputWidth = inputSize ?? m.InputWidth,
        InputHeight = inputSize ?? m.InputHeight,
        Channels = m.Channels,
        GreyMode = m.GreyMode,
        ResizeMethod = m.ResizeMethod,
        Scale = m.Scale,
        Mean = m.Mean,
        Std = m.Std,
        EmbeddingDimension = dimension ?? m.EmbeddingDimension,
        L2Normalize = m.L2Normalize,
        Sha256 = m.Sha256,
    };
}
