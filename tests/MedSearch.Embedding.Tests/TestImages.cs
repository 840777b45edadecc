using MedSearch.Imaging;

namespace MedSearch.Embedding.Tests;

/// <summary>Deterministic synthetic images: no test data files to ship.</summary>
internal static class TestImages
{
    /// <summary>
    /// A grey "phantom": textured ellipses of different intensities on a dark background, like a CT slice. The
    /// texture matters: ImageNet features of flat regions are dominated by whatever noise is added to them.
    /// </summary>
    public static PixelImage Phantom(int width, int height, int seed)
    {
        var random = new Random(seed);
        var ellipses = Enumerable.Range(0, 6).Select(_ => (
            Cx: random.NextDouble(), Cy: random.NextDouble(),
            Rx: 0.1 + 0.3 * random.NextDouble(), Ry: 0.1 + 0.3 * random.NextDouble(),
            Value: 40 + 170 * random.NextDouble())).ToArray();
        double fx = 0.15 + 0.2 * random.NextDouble(), fy = 0.15 + 0.2 * random.NextDouble();
        var pixels = new float[width * height];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            double u = (x + 0.5) / width, v = (y + 0.5) / height, value = 10;
            foreach (var e in ellipses)
            {
                double dx = (u - e.Cx) / e.Rx, dy = (v - e.Cy) / e.Ry;
                if (dx * dx + dy * dy <= 1) value = e.Value;
            }
            value += 20 * Math.Sin(x * fx) * Math.Sin(y * fy) + 10 * Math.Sin((x + 2 * y) * 0.05);
            pixels[y * width + x] = (float)Math.Clamp(value, 0, 255);
        }
        return new PixelImage(width, height, 1, pixels);
    }

    /// <summary>Coloured diagonal stripes: nothing like <see cref="Phantom"/>.</summary>
    public static PixelImage Stripes(int width, int height, int period)
    {
        var pixels = new float[width * height * 3];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            bool on = (x + y) / period % 2 == 0;
            int o = (y * width + x) * 3;
            pixels[o] = on ? 230 : 20;
            pixels[o + 1] = on ? 60 : 200;
            pixels[o + 2] = 128 + 100 * MathF.Sin(x * 0.05f);
        }
        return new PixelImage(width, height, 3, pixels);
    }

    /// <summary>A smooth colour gradient.</summary>
    public static PixelImage Gradient(int width, int height)
    {
        var pixels = new float[width * height * 3];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            int o = (y * width + x) * 3;
            pixels[o] = 255f * x / (width - 1);
            pixels[o + 1] = 255f * y / (height - 1);
            pixels[o + 2] = 255f * (x + y) / (width + height - 2);
        }
        return new PixelImage(width, height, 3, pixels);
    }

    /// <summary>The same image plus seeded Gaussian noise, clamped to 0..255.</summary>
    public static PixelImage WithNoise(PixelImage image, float sigma, int seed)
    {
        var random = new Random(seed);
        var pixels = new float[image.Pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            // Box-Muller.
            double g = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            pixels[i] = Math.Clamp(image.Pixels[i] + (float)(sigma * g), 0f, 255f);
        }
        return new PixelImage(image.Width, image.Height, image.Channels, pixels);
    }

    /// <summary>A grey image stored as RGB with R = G = B.</summary>
    public static PixelImage AsRgb(PixelImage grey)
    {
        var pixels = new float[grey.Pixels.Length * 3];
        for (int i = 0; i < grey.Pixels.Length; i++) pixels[3 * i] = pixels[3 * i + 1] = pixels[3 * i + 2] = grey.Pixels[i];
        return new PixelImage(grey.Width, grey.Height, 3, pixels);
    }

    public static float Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return (float)(dot / Math.Sqrt(na * nb));
    }

    public static double Norm(ReadOnlySpan<float> v)
    {
        double sum = 0;
        foreach (float x in v) sum += (double)x * x;
        return Math.Sqrt(sum);
    }
}
