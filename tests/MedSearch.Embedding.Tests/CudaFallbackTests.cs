using MedSearch.Imaging;
using MedSearch.Tests.Support;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;

namespace MedSearch.Embedding.Tests;

/// <summary>
/// The path where the NVIDIA driver is there but ONNX Runtime's CUDA provider still fails (CUDA runtime, cuBLAS or
/// cuDNN missing or broken). <see cref="EncoderOptions.SkipDriverProbe"/> lets a machine without a driver reach it:
/// the Gpu.Linux package ships libonnxruntime_providers_cuda.so, whose CUDA libraries are not here, so session
/// creation with the CUDA provider throws.
/// </summary>
public sealed class CudaFallbackTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("medsearch-cuda-fallback-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static PixelImage[] Images() =>
    [
        TestImages.Phantom(512, 512, seed: 41),
        TestImages.Stripes(300, 200, period: 12),
        TestImages.WithNoise(TestImages.Gradient(96, 96), sigma: 20, seed: 4),
    ];

    /// <summary>
    /// With a driver (a GPU machine) CUDA may just work and nothing fails; the tests here are for machines where the
    /// provider cannot start, and say so rather than pass on a path they did not take.
    /// </summary>
    private bool DriverPresent()
    {
        if (!ImageEncoder.NvidiaDriverPresent()) return false;
        output.WriteLine("an NVIDIA driver is present: the failing-provider path is not what this machine takes; nothing checked");
        return true;
    }

    [Fact]
    public void ExplicitCudaWithoutTheProbeThrowsAnErrorNamingCuda()
    {
        if (DriverPresent()) return;
        var manifest = TinyConvModel.Write(Path.Combine(_dir, "tiny"));
        var error = Assert.Throws<InvalidOperationException>(() =>
            ImageEncoder.Open(manifest, new EncoderOptions { Device = EncoderDevice.Cuda, SkipDriverProbe = true }));
        output.WriteLine(error.ToString());
        Assert.Contains("CUDA device 0 cannot be used by ONNX Runtime", error.Message);
        Assert.NotNull(error.InnerException);
        Assert.True(error.InnerException is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException,
            $"inner exception: {error.InnerException.GetType()}");
        Assert.Contains(error.InnerException.Message, error.Message);
    }

    [Fact]
    public void AutoWithoutTheProbeTriesCudaThenFallsBackToTheSameCpuVectors()
    {
        if (DriverPresent()) return;
        var manifest = TinyConvModel.Write(Path.Combine(_dir, "tiny"));
        using var auto = ImageEncoder.Open(manifest, new EncoderOptions { Device = EncoderDevice.Auto, SkipDriverProbe = true });
        // What the CUDA provider fails with on this machine, from the explicit request (which does not fall back).
        var cudaError = Assert.Throws<InvalidOperationException>(() =>
            ImageEncoder.Open(manifest, new EncoderOptions { Device = EncoderDevice.Cuda, SkipDriverProbe = true }));
        using var cpu = ImageEncoder.Open(manifest, new EncoderOptions { Device = EncoderDevice.Cpu });
        output.WriteLine($"auto: {auto.DeviceDescription}; fallback: {auto.FallbackReason}");

        Assert.Equal(EncoderDevice.Cpu, auto.Device);
        Assert.Equal("CPUExecutionProvider", auto.ExecutionProvider);
        Assert.NotNull(auto.FallbackReason);
        // The provider's failure, not the driver probe's short cut.
        Assert.DoesNotContain("no NVIDIA driver found", auto.FallbackReason);
        Assert.Contains("CUDA device 0 cannot be used by ONNX Runtime", auto.FallbackReason);
        Assert.Contains(cudaError.InnerException!.Message, auto.FallbackReason);

        var images = Images();
        var fromAuto = new float[images.Length * auto.Dimensions];
        var fromCpu = new float[images.Length * cpu.Dimensions];
        auto.Embed(images, fromAuto);
        cpu.Embed(images, fromCpu);
        AssertSameBits(fromCpu, fromAuto); // the same CPU session either way

        var input = new float[cpu.InputLength];
        cpu.Preprocess(images[0], input);
        var preprocessedAuto = new float[auto.Dimensions];
        var preprocessedCpu = new float[cpu.Dimensions];
        auto.EmbedPreprocessed(input, 1, preprocessedAuto);
        cpu.EmbedPreprocessed(input, 1, preprocessedCpu);
        AssertSameBits(preprocessedCpu, preprocessedAuto);
    }

    private static void AssertSameBits(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"float {i}: {expected[i]:R} (CPU) vs {actual[i]:R} (auto)");
    }
}
