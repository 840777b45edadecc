using MedSearch.Imaging;
using Xunit.Abstractions;

namespace MedSearch.Embedding.Tests;

[Collection(PreparedModelCollection.Name)]
public sealed class ImageEncoderTests(PreparedModelFixture fixture, ITestOutputHelper output)
{
    private ImageEncoder Encoder => fixture.Encoder;

    private static PixelImage[] MixedImages() =>
    [
        TestImages.Phantom(512, 512, seed: 11),
        TestImages.Stripes(300, 200, period: 12),
        TestImages.Gradient(97, 143),
        TestImages.Phantom(1000, 800, seed: 12),
        TestImages.WithNoise(TestImages.Gradient(224, 224), sigma: 20, seed: 3),
    ];

    [Fact]
    public void ReportsModelAndDevice()
    {
        Assert.Equal(512, Encoder.Dimensions);
        Assert.Equal(EncoderDevice.Cpu, Encoder.Device);
        Assert.Null(Encoder.FallbackReason);
        Assert.StartsWith("resnet18-imagenet-", Encoder.Manifest.ModelId);
        output.WriteLine($"{Encoder.Manifest.ModelId} on {Encoder.DeviceDescription}");
    }

    [Fact]
    public void BatchOfFiveGivesTheSameVectorsAsFiveSingleImages()
    {
        var images = MixedImages();
        var batch = new float[images.Length * Encoder.Dimensions];
        Assert.Equal(batch.Length, Encoder.Embed(images, batch));

        for (int i = 0; i < images.Length; i++)
        {
            var single = Encoder.Embed(images[i]);
            var row = batch.AsSpan(i * Encoder.Dimensions, Encoder.Dimensions);
            // ONNX Runtime's CPU kernels compute each batch item with the same arithmetic, in the same order, so
            // batching changes nothing, bit for bit.
            Assert.True(row.SequenceEqual(single), $"image {i}: batched and single vectors differ by up to {MaxDifference(row, single)}");
            Assert.Equal(1.0, TestImages.Norm(row), 1e-6);
        }
    }

    [Fact]
    public void BatchesLargerThanTheMaximumAreSplitWithoutChangingResults()
    {
        var images = MixedImages();
        using var small = ImageEncoder.Open(DefaultModel.ManifestPath(fixture.DataDir),
            new EncoderOptions { Device = EncoderDevice.Cpu, MaxBatchSize = 2 });
        var split = new float[images.Length * 512];
        var whole = new float[images.Length * 512];
        small.Embed(images, split);
        Encoder.Embed(images, whole);
        Assert.Equal(whole, split);
    }

    [Fact]
    public void TwoEncoderInstancesGiveBitIdenticalVectors()
    {
        using var second = ImageEncoder.OpenDefault(fixture.DataDir, new EncoderOptions { Device = EncoderDevice.Cpu });
        foreach (var image in MixedImages())
            Assert.Equal(Encoder.Embed(image), second.Embed(image));
    }

    [Fact]
    public void NoisyCopyIsFarMoreSimilarThanUnrelatedImages()
    {
        var phantom = TestImages.Phantom(400, 400, seed: 5);
        var vector = Encoder.Embed(phantom);
        float noisy = TestImages.Cosine(vector, Encoder.Embed(TestImages.WithNoise(phantom, sigma: 4, seed: 9)));
        float otherPhantom = TestImages.Cosine(vector, Encoder.Embed(TestImages.Phantom(400, 400, seed: 6)));
        float stripes = TestImages.Cosine(vector, Encoder.Embed(TestImages.Stripes(400, 400, period: 10)));
        float gradient = TestImages.Cosine(vector, Encoder.Embed(TestImages.Gradient(400, 400)));
        output.WriteLine($"cosine to: noisy copy {noisy:F4}, other phantom {otherPhantom:F4}, stripes {stripes:F4}, gradient {gradient:F4}");

        Assert.True(noisy > 0.98f, $"noisy copy cosine {noisy}");
        // Another phantom is the same kind of picture, so the margin to it is smaller than to unrelated patterns.
        Assert.True(noisy - otherPhantom > 0.1f, $"noisy copy {noisy} vs other phantom {otherPhantom}");
        Assert.True(noisy - stripes > 0.3f, $"noisy copy {noisy} vs stripes {stripes}");
        Assert.True(noisy - gradient > 0.3f, $"noisy copy {noisy} vs gradient {gradient}");
    }

    [Fact]
    public void GreyImageEmbedsLikeItsRgbTwin()
    {
        var grey = TestImages.Phantom(333, 287, seed: 21);
        Assert.Equal(Encoder.Embed(grey), Encoder.Embed(TestImages.AsRgb(grey)));
    }

    [Fact]
    public void EmptyBatchWritesNothing()
    {
        Assert.Equal(0, Encoder.Embed([], Span<float>.Empty));
    }

    [Fact]
    public void TooSmallOutputIsRejected()
    {
        var error = Assert.Throws<ArgumentException>(() => Encoder.Embed(MixedImages(), new float[512]));
        Assert.Contains("5 images x 512 dimensions need 2560", error.Message);
    }

    [Fact]
    public void NonFinitePixelsAreRejectedNamingTheImage()
    {
        var bad = TestImages.Gradient(50, 50);
        bad.Pixels[1234] = float.NaN;
        var error = Assert.Throws<ArgumentException>(() => Encoder.Embed([TestImages.Gradient(50, 50), bad], new float[2 * 512]));
        Assert.Contains("images[1]", error.Message);
        Assert.Contains("NaN", error.Message);
    }

    [Fact]
    public void AutoDeviceEitherUsesCudaOrFallsBackWithAReason()
    {
        using var auto = ImageEncoder.OpenDefault(fixture.DataDir, new EncoderOptions { Device = EncoderDevice.Auto });
        output.WriteLine($"Auto: {auto.DeviceDescription}; fallback: {auto.FallbackReason ?? "none"}");
        if (auto.Device == EncoderDevice.Cpu)
        {
            Assert.NotNull(auto.FallbackReason);
            Assert.Contains("CUDA", auto.FallbackReason);
            Assert.Equal(Encoder.Embed(TestImages.Gradient(64, 64)), auto.Embed(TestImages.Gradient(64, 64)));
        }
        else
        {
            Assert.Null(auto.FallbackReason);
            var cpu = Encoder.Embed(TestImages.Gradient(64, 64));
            var gpu = auto.Embed(TestImages.Gradient(64, 64));
            Assert.True(TestImages.Cosine(cpu, gpu) > 0.9999f);
        }
    }

    [Fact]
    public void ExplicitCudaThrowsInsteadOfFallingBack()
    {
        try
        {
            using var cuda = ImageEncoder.OpenDefault(fixture.DataDir, new EncoderOptions { Device = EncoderDevice.Cuda });
            Assert.Equal(EncoderDevice.Cuda, cuda.Device);
            Assert.Null(cuda.FallbackReason);
        }
        catch (InvalidOperationException ex)
        {
            output.WriteLine(ex.Message);
            Assert.Contains("CUDA device 0 cannot be used", ex.Message);
        }
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageEncoder.OpenDefault(fixture.DataDir, new EncoderOptions { MaxBatchSize = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageEncoder.OpenDefault(fixture.DataDir, new EncoderOptions { IntraOpThreads = 0 }));
    }

    private static float MaxDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }
}
