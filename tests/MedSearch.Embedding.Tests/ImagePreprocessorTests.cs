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

    [Theory]
    // Reference values: PIL 9.4 Image.resize(..., BICUBIC) on the same image in float mode ('F', no rounding, no
    // clamping); PIL's 8-bit result is those values clamped to 0..255, as ours is.
    [InlineData(7, 5, 11, 8, new float[]
    {
        -9.150f, 6.862f, 33.816f, 57.361f, 80.907f, 104.452f, 126.641f, 155.736f, 192.457f, 221.435f, 236.474f, 28.743f, 44.074f, 72.444f,
        105.209f, 132.637f, 155.234f, 187.170f, 176.383f, 118.421f, 132.853f, 154.879f, 94.555f, 111.089f, 136.954f, 153.414f, 173.975f,
        198.250f, 240.467f, 187.611f, 29.773f, 28.862f, 58.258f, 169.867f, 196.710f, 201.114f, 77.877f, 39.595f, 78.250f, 107.559f,
        107.520f, 75.075f, 93.428f, 113.570f, 138.148f, 164.991f, 169.396f, 46.158f, 7.514f, 46.531f, 74.425f, 107.140f, 143.620f,
        172.620f, 187.633f, 18.148f, 34.682f, 60.548f, 77.008f, 97.273f, 121.844f, 150.051f, 176.580f, 199.980f, 226.959f, 242.945f,
        61.165f, 76.496f, 104.866f, 137.630f, 171.578f, 187.655f, 107.718f, 68.639f, 102.777f, 130.313f, 146.324f, 111.946f, 127.958f,
        154.912f, 178.457f, 213.548f, 225.548f, 65.803f, -21.575f, 20.733f, 48.718f, 64.729f,
    })]
    [InlineData(13, 9, 5, 4, new float[]
    {
        93.395f, 139.761f, 113.744f, 108.404f, 144.160f, 110.927f, 110.213f, 134.036f, 113.494f, 114.974f, 129.446f, 113.574f, 113.130f,
        131.179f, 116.984f, 154.647f, 120.818f, 116.339f, 118.046f, 119.010f,
    })]
    public void BicubicMatchesPilClampedToTheByteRange(int width, int height, int targetWidth, int targetHeight, float[] pil)
    {
        var pixels = new float[width * height];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            pixels[y * width + x] = (x * 37 + y * 91) % 256;
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create(width: targetWidth, height: targetHeight, resize: ResizeMethod.Bicubic));
        var planes = Write(preprocessor, new PixelImage(width, height, 1, pixels));
        for (int i = 0; i < pil.Length; i++)
            Assert.Equal(Math.Clamp(pil[i], 0f, 255f), planes[i], 0.01f);
    }

    [Fact]
    public void BicubicCannotHideAnInfinityBehindItsClamp()
    {
        var image = TestImages.Phantom(300, 300, seed: 2);
        image.Pixels[150 * 300 + 150] = float.PositiveInfinity;
        var preprocessor = new ImagePreprocessor(ManifestFactory.Create(resize: ResizeMethod.Bicubic));
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
