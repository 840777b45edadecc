namespace MedSearch.Embedding;

public enum EncoderDevice
{
    /// <summary>CUDA when ONNX Runtime can use it, otherwise CPU (the reason is kept in <see cref="ImageEncoder.FallbackReason"/>).</summary>
    Auto,
    Cpu,
    /// <summary>CUDA or an error: for deployments where a silent CPU fallback would hide a broken GPU setup.</summary>
    Cuda,
}

public sealed record EncoderOptions
{
    public EncoderDevice Device { get; init; } = EncoderDevice.Auto;

    /// <summary>CUDA device ordinal; ignored on CPU.</summary>
    public int DeviceId { get; init; }

    /// <summary>ONNX Runtime intra-op threads (CPU kernels).</summary>
    public int IntraOpThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>
    /// Most images per ONNX Runtime run; larger <see cref="ImageEncoder.Embed(IReadOnlyList{MedSearch.Imaging.PixelImage}, Span{float})"/>
    /// calls are split. Bounds the input buffer (600 KB per 224x224 image) and the activations.
    /// </summary>
    public int MaxBatchSize { get; init; } = 32;

    /// <summary>
    /// Test seam: <see cref="EncoderDevice.Auto"/> goes straight to ONNX Runtime's CUDA provider without first
    /// checking for the NVIDIA driver, so that a machine without one exercises the fall-back from a CUDA provider
    /// that fails to load. Never set by the product.
    /// </summary>
    internal bool SkipDriverProbe { get; init; }

    /// <summary>
    /// These options on the device a <c>--device</c> value names: <c>auto</c>, <c>cpu</c>, <c>cuda</c> (device 0)
    /// or <c>cuda:N</c>; case-insensitive.
    /// </summary>
    /// <exception cref="FormatException">The text is none of those; the message quotes it.</exception>
    public EncoderOptions WithDevice(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text.Trim().ToLowerInvariant();
        if (value == "auto") return this with { Device = EncoderDevice.Auto, DeviceId = 0 };
        if (value == "cpu") return this with { Device = EncoderDevice.Cpu, DeviceId = 0 };
        if (value == "cuda") return this with { Device = EncoderDevice.Cuda, DeviceId = 0 };
        if (value.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(value.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id))
            return this with { Device = EncoderDevice.Cuda, DeviceId = id };
        throw new FormatException($"device must be auto, cpu, cuda or cuda:N (N = the GPU's number, from 0), got `{text}`");
    }

    internal void Validate()
    {
        if (!Enum.IsDefined(Device)) throw new ArgumentOutOfRangeException(nameof(Device), Device, "unknown encoder device");
        if (DeviceId < 0) throw new ArgumentOutOfRangeException(nameof(DeviceId), DeviceId, "CUDA device id must not be negative");
        if (IntraOpThreads < 1) throw new ArgumentOutOfRangeException(nameof(IntraOpThreads), IntraOpThreads, "at least one thread is needed");
        if (MaxBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), MaxBatchSize, "batch size must be at least 1");
    }
}
