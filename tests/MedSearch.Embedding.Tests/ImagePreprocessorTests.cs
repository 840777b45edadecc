using MedSearch.Imaging;

namespace MedSearch.Embedding.Tests;

public sealed class ImagePreprocessorTests
{
    [Theory]
    [InlineData(37, 53)]     // enlarge
    [InlineData(224, 224)]   // same size
    [InlineData(1000, 700)]  // shrink by more than 2x
    public void ConstantImageResizesToTheSameConstant(int width, int height)
    {
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create());
        var grey = new PixelImage(width, height, 1, Enumerable.Repeat(128f, width * height).ToArray());
        var planes = Write(preprocessor, grey);
        Assert.All(planes, v => Assert.Equal(128f, v, 1e-4f));

        var rgb = new PixelImage(width, height, 3, Enumerable.Range(0, width * height * 3).Select(i => (float)(10 + 10 * (i % 3))).ToArray());
        planes = Write(preprocessor, rgb);
        int plane = 224 * 224;
        for (int c = 0; c < 3; c++)
            Assert.All(planes.AsSpan(c * plane, plane).ToArray(), v => Assert.Equal(10 + 10 * c, v, 1e-4f));
    }

    [Fact]
    public void TwoByTwoEnlargesToFourByFourWithPixelCentreAlignment()
    {
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create(width: 4, height: 4));
        var image = new PixelImage(2, 2, 1, [0, 80, 160, 240]);
        // align_corners=false: output pixel centres map to source -0.25, 0.25, 0.75, 1.25, clamped at the edges
        // (what PIL, torchvision and F.interpolate(mode="bilinear") give).
        float[] expected =
        [
            0, 20, 60, 80,
            40, 60, 100, 120,
            120, 140, 180, 200,
            160, 180, 220, 240,
        ];
        var planes = Write(preprocessor, image);
        for (int c = 0; c < 3; c++)
            Assert.Equal(expected, planes.AsSpan(c * 16, 16).ToArray());
    }

    [Fact]
    public void ShrinkingAveragesInsteadOfAliasing()
    {
        // A one-pixel checkerboard halved: plain bilinear sampling at the new pixel centres would pick an
        // arbitrary mix; the widened kernel gives the true local mean everywhere away from the border.
        int size = 448;
        var pixels = new float[size * size];
        for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
            pixels[y * size + x] = (x + y) % 2 == 0 ? 0 : 255;
        var planes = Write(new ImagePreprocessor(ManifestFactory.Create()), new PixelImage(size, size, 1, pixels));
        for (int y = 1; y < 223; y++)
        for (int x = 1; x < 223; x++)
            Assert.Equal(127.5f, planes[y * 224 + x], 1e-3f);
    }

    [Fact]
    public void GreyIsReplicatedToThreeIdenticalChannels()
    {
        var random = new Random(3);
        var grey = new PixelImage(61, 45, 1, Enumerable.Range(0, 61 * 45).Select(_ => random.NextSingle() * 255).ToArray());
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create());
        var planes = Write(preprocessor, grey);
        int plane = 224 * 224;
        Assert.Equal(planes.AsSpan(0, plane).ToArray(), planes.AsSpan(plane, plane).ToArray());
        Assert.Equal(planes.AsSpan(0, plane).ToArray(), planes.AsSpan(2 * plane, plane).ToArray());
        Assert.Equal(planes, Write(preprocessor, TestImages.AsRgb(grey)));
    }

    [Fact]
    public void ScaleMeanAndStdApplyPerChannel()
    {
        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create(width: 8, height: 8, scale: PixelScale.Unit, mean: mean, std: std));
        var white = new PixelImage(5, 5, 1, Enumerable.Repeat(255f, 25).ToArray());
        var planes = Write(preprocessor, white);
        for (int c = 0; c < 3; c++)
            Assert.All(planes.AsSpan(c * 64, 64).ToArray(), v => Assert.Equal((1 - mean[c]) / std[c], v, 1e-4f));
    }

    [Fact]
    public void OutputIsDeterministic()
    {
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create());
        var image = TestImages.Stripes(517, 389, period: 7);
        Assert.Equal(Write(preprocessor, image), Write(preprocessor, image));
    }

    [Fact]
    public void WrongDestinationLengthIsRejected()
    {
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create());
        var error = Assert.Throws<ArgumentException>(() => preprocessor.Write(TestImages.Gradient(10, 10), new float[100]));
        Assert.Contains("150528", error.Message);
    }

    [Fact]
    public void NonFinitePixelsAreRejected()
    {
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create());
        var image = TestImages.Phantom(300, 300, seed: 1);
        image.Pixels[299] = float.PositiveInfinity;
        var error = Assert.Throws<ArgumentException>(() => preprocessor.Write(image, new float[preprocessor.TensorLength]));
        Assert.Contains("NaN or infinite", error.Message);
    }

    private static float[] Write(ImagePreprocessor preprocessor, PixelImage image)
    {
        var destination = new float[preprocessor.TensorLength];
        preprocessor.Write(image, destination);
        return destination;
    }
}
