namespace MedSearch.Embedding.Tests;

internal static class ManifestFactory
{
    /// <summary>A valid manifest for a model of the given input size, with a placeholder hash.</summary>
    public static ModelManifest Create(int width = 224, int height = 224, PixelScale scale = PixelScale.Byte,
        float[]? mean = null, float[]? std = null, string sha256 = "", ResizeMethod resize = ResizeMethod.Bilinear) => new()
    {
        Name = "test-model",
        Version = "1",
        OnnxFile = "model.onnx",
        InputName = "input",
        OutputName = "output",
        InputWidth = width,
        InputHeight = height,
        Channels = 3,
        GreyMode = GreyMode.Replicate,
        ResizeMethod = resize,
        Scale = scale,
        Mean = mean ?? [0, 0, 0],
        Std = std ?? [1, 1, 1],
        EmbeddingDimension = 8,
        L2Normalize = true,
        Sha256 = sha256.Length > 0 ? sha256 : new string('a', 64),
    };
}
