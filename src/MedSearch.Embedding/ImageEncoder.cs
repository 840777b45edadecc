using System.Buffers;
using System.Runtime.ExceptionServices;
using MedSearch.Imaging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MedSearch.Embedding;

/// <summary>
/// Images in, vectors out, with one ONNX model described by a <see cref="ModelManifest"/>.
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="Embed(IReadOnlyList{PixelImage}, Span{float})"/> may be called from several threads
/// at once (ONNX Runtime's Run is thread-safe and every call rents its own buffers); concurrent calls share the
/// session's intra-op thread pool, so on a CPU they queue for cores rather than run faster. Dispose only once no
/// call is in flight. On the CPU, results are bit-identical across instances, processes and batch sizes for the
/// same image, model and <see cref="OptimizationLevel"/> (the tests check it). On CUDA, convolution algorithms
/// are fixed rather than benchmarked per run, so that runs repeat, and TF32 is off, so that GPU vectors stay
/// close to CPU ones; bench/gpu.sh reports whether batch sizes give the same bits there.
/// </remarks>
public sealed class ImageEncoder : IDisposable
{
    /// <summary>The graph optimisation every session uses; recorded with each index because it can change the last bits.</summary>
    public const GraphOptimizationLevel OptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL;

    private readonly InferenceSession _session;
    private readonly ImagePreprocessor _preprocessor;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly int _maxBatch;
    private long _runs;

    private ImageEncoder(ModelManifest manifest, EncoderOptions options)
    {
        options.Validate();
        Manifest = manifest;
        _preprocessor = new ImagePreprocessor(manifest);
        _inputNames = [manifest.InputName];
        _outputNames = [manifest.OutputName];
        (_session, Device, FallbackReason) = CreateSession(manifest.OnnxPath, options);
        try
        {
            _maxBatch = CheckModelSignature(manifest, _session, options.MaxBatchSize);
        }
        catch
        {
            _session.Dispose();
            throw;
        }
        DeviceDescription = Device == EncoderDevice.Cuda
            ? $"CUDA device {options.DeviceId}"
            : $"CPU ({options.IntraOpThreads} threads)";
    }

    /// <summary>Opens the model a manifest describes (verifying its hash).</summary>
    /// <exception cref="EmbeddingModelException">The manifest or model is unusable.</exception>
    /// <exception cref="InvalidOperationException"><see cref="EncoderDevice.Cuda"/> was asked for and CUDA cannot be used.</exception>
    public static ImageEncoder Open(string manifestPath, EncoderOptions? options = null) =>
        new(ModelManifest.Load(manifestPath), options ?? new EncoderOptions());

    /// <summary>Opens the built-in ResNet18 model, preparing it under <paramref name="dataDir"/> first if needed.</summary>
    public static ImageEncoder OpenDefault(string dataDir, EncoderOptions? options = null) =>
        new(DefaultModel.Prepare(dataDir), options ?? new EncoderOptions());

    /// <summary>The ONNX Runtime native library's version, e.g. "1.31.0".</summary>
    public static string OnnxRuntimeVersion => OrtEnv.Instance().GetVersionString();

    public ModelManifest Manifest { get; }

    /// <summary>Length of one embedding.</summary>
    public int Dimensions => Manifest.EmbeddingDimension;

    /// <summary>Where inference runs: <see cref="EncoderDevice.Cpu"/> or <see cref="EncoderDevice.Cuda"/>, never Auto.</summary>
    public EncoderDevice Device { get; }

    /// <summary>For logs, e.g. "CUDA device 0" or "CPU (8 threads)".</summary>
    public string DeviceDescription { get; }

    /// <summary>Why <see cref="EncoderDevice.Auto"/> ended up on the CPU; null when it did not fall back.</summary>
    public string? FallbackReason { get; }

    /// <summary>ONNX Runtime's name of the provider that runs the model: CUDAExecutionProvider or CPUExecutionProvider.</summary>
    public string ExecutionProvider => Device == EncoderDevice.Cuda ? "CUDAExecutionProvider" : "CPUExecutionProvider";

    /// <summary>ONNX Runtime runs started so far (one per batch): what shows that cancelled work never reached the model.</summary>
    public long Runs => Interlocked.Read(ref _runs);

    /// <summary>Floats one preprocessed image occupies in the model input (channels × height × width).</summary>
    public int InputLength => _preprocessor.TensorLength;

    /// <summary>
    /// Writes one image's model input into <paramref name="destination"/> (<see cref="InputLength"/> floats).
    /// Separate from inference so that an ingest pipeline can preprocess on its decode workers while the
    /// encoder runs, and hold small model inputs instead of full-size images in its queues.
    /// </summary>
    /// <exception cref="ArgumentException">The destination has the wrong length, or the image holds NaN or infinity.</exception>
    public void Preprocess(PixelImage image, Span<float> destination) => _preprocessor.Write(image, destination);

    /// <summary>
    /// Embeds <paramref name="images"/> into consecutive rows of <paramref name="output"/> (row i = image i), each
    /// unit-length when the manifest says l2Normalize (an all-zero feature vector stays zero). One ONNX Runtime run
    /// per <see cref="EncoderOptions.MaxBatchSize"/> images.
    /// </summary>
    /// <returns>Floats written: images.Count × <see cref="Dimensions"/>.</returns>
    /// <exception cref="InvalidOperationException">The model produced NaN or infinity (for instance from NaN pixels).</exception>
    public int Embed(IReadOnlyList<PixelImage> images, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(images);
        int needed = images.Count * Dimensions;
        if (output.Length < needed)
            throw new ArgumentException($"output holds {output.Length} floats, {images.Count} images x {Dimensions} dimensions need {needed}", nameof(output));
        for (int i = 0; i < images.Count; i++)
            if (images[i] is null) throw new ArgumentException($"images[{i}] is null", nameof(images));

        if (images.Count == 0) return 0;
        int perImage = InputLength;
        float[] input = ArrayPool<float>.Shared.Rent(Math.Min(_maxBatch, images.Count) * perImage);
        try
        {
            for (int first = 0; first < images.Count; first += _maxBatch)
            {
                int count = Math.Min(_maxBatch, images.Count - first);
                PreprocessBatch(images, first, count, input);
                Run(input.AsMemory(0, count * perImage), count, first, output.Slice(first * Dimensions, count * Dimensions));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(input);
        }
        return needed;
    }

    /// <summary>
    /// Embeds <paramref name="count"/> images that <see cref="Preprocess"/> already wrote, one after another, into
    /// <paramref name="input"/>; rows of <paramref name="output"/> as in <see cref="Embed(IReadOnlyList{PixelImage}, Span{float})"/>.
    /// </summary>
    /// <returns>Floats written: count × <see cref="Dimensions"/>.</returns>
    public int EmbedPreprocessed(float[] input, int count, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        int perImage = InputLength;
        if (input.Length < (long)count * perImage)
            throw new ArgumentException($"input holds {input.Length} floats, {count} preprocessed images need {(long)count * perImage}", nameof(input));
        int needed = count * Dimensions;
        if (output.Length < needed)
            throw new ArgumentException($"output holds {output.Length} floats, {count} images x {Dimensions} dimensions need {needed}", nameof(output));
        for (int first = 0; first < count; first += _maxBatch)
        {
            int n = Math.Min(_maxBatch, count - first);
            Run(input.AsMemory(first * perImage, n * perImage), n, first, output.Slice(first * Dimensions, n * Dimensions));
        }
        return needed;
    }

    public float[] Embed(PixelImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var vector = new float[Dimensions];
        Embed([image], vector);
        return vector;
    }

    public void Dispose() => _session.Dispose();

    private void PreprocessBatch(IReadOnlyList<PixelImage> images, int first, int count, float[] input)
    {
        int perImage = InputLength;
        if (count == 1)
        {
            PreprocessOne(images, first, input.AsSpan(0, perImage));
            return;
        }
        try
        {
            // Each image writes its own slice, so the result does not depend on scheduling.
            Parallel.For(0, count, i => PreprocessOne(images, first + i, input.AsSpan(i * perImage, perImage)));
        }
        catch (AggregateException ex)
        {
            ExceptionDispatchInfo.Throw(ex.InnerExceptions[0]);
        }
    }

    /// <summary>One ONNX Runtime run over <paramref name="count"/> preprocessed images; <paramref name="first"/> numbers them in errors.</summary>
    private void Run(Memory<float> input, int count, int first, Span<float> output)
    {
        Interlocked.Increment(ref _runs);
        long[] shape = [count, Manifest.Channels, Manifest.InputHeight, Manifest.InputWidth];
        using (var tensor = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input, shape))
        using (var runOptions = new RunOptions())
        using (var results = _session.Run(runOptions, _inputNames, [tensor], _outputNames))
        {
            var vectors = results[0].GetTensorDataAsSpan<float>();
            if (vectors.Length != output.Length)
                throw new InvalidOperationException(
                    $"model {Manifest.ModelId} returned {vectors.Length} floats for {count} images, expected {count} x {Dimensions}");
            vectors.CopyTo(output);
        }
        for (int i = 0; i < count; i++)
            FinishRow(output.Slice(i * Dimensions, Dimensions), first + i);
    }

    private void PreprocessOne(IReadOnlyList<PixelImage> images, int index, Span<float> destination)
    {
        try
        {
            _preprocessor.Write(images[index], destination);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"images[{index}] cannot be encoded: {ex.Message}", ex);
        }
    }

    private void FinishRow(Span<float> row, int imageIndex)
    {
        double sumOfSquares = 0;
        foreach (float v in row) sumOfSquares += (double)v * v;
        if (!double.IsFinite(sumOfSquares))
            throw new InvalidOperationException(
                $"model {Manifest.ModelId} produced a non-finite embedding for image {imageIndex} (NaN or infinite pixels, or a broken model)");
        // The default model normalises in-graph already; doing it here too keeps the unit-length promise for
        // any manifest model, in double so that a second pass does not drift.
        if (!Manifest.L2Normalize || sumOfSquares == 0) return;
        double inverse = 1.0 / Math.Sqrt(sumOfSquares);
        foreach (ref float v in row) v = (float)(v * inverse);
    }

    private static (InferenceSession Session, EncoderDevice Device, string? FallbackReason) CreateSession(string onnxPath, EncoderOptions options)
    {
        if (string.IsNullOrEmpty(onnxPath))
            throw new ArgumentException("the manifest was not loaded from a file (OnnxPath is empty); use ModelManifest.Load");
        string? fallbackReason = null;
        // Without the driver, ONNX Runtime's CUDA provider fails only after loading ~300 MB of libraries and
        // logging an error of its own; the driver library tells the same thing cheaply and quietly.
        if (options.Device == EncoderDevice.Auto && !options.SkipDriverProbe && !NvidiaDriverPresent())
            fallbackReason = "CUDA unavailable: no NVIDIA driver found (libcuda.so.1 cannot be loaded); using the CPU";
        else if (options.Device is EncoderDevice.Auto or EncoderDevice.Cuda)
        {
            try
            {
                return (NewSession(onnxPath, options, cuda: true), EncoderDevice.Cuda, null);
            }
            catch (Exception ex) when (ex is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                // When the provider library itself loads, the library it then fails on (cuDNN, a driver call) is
                // named only in ONNX Runtime's own log, so the hint names everything the provider links against.
                var reason = $"CUDA device {options.DeviceId} cannot be used by ONNX Runtime: {ex.Message} " +
                             "(its CUDA provider needs an NVIDIA driver, CUDA 13 runtime and cuBLAS, and cuDNN 9 on the library path; " +
                             "ONNX Runtime's error log names the library that failed)";
                if (options.Device == EncoderDevice.Cuda) throw new InvalidOperationException(reason, ex);
                fallbackReason = reason;
            }
        }
        return (NewSession(onnxPath, options, cuda: false), EncoderDevice.Cpu, fallbackReason);
    }

    internal static bool NvidiaDriverPresent()
    {
        if (!System.Runtime.InteropServices.NativeLibrary.TryLoad("libcuda.so.1", out var handle)) return false;
        System.Runtime.InteropServices.NativeLibrary.Free(handle);
        return true;
    }

    private static InferenceSession NewSession(string onnxPath, EncoderOptions options, bool cuda)
    {
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = OptimizationLevel,
            IntraOpNumThreads = options.IntraOpThreads,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogId = "MedSearch.Embedding",
        };
        if (cuda)
        {
            using var cudaOptions = new OrtCUDAProviderOptions();
            cudaOptions.UpdateOptions(new Dictionary<string, string>
            {
                ["device_id"] = options.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                // EXHAUSTIVE (the default) times every cuDNN algorithm at session start and keeps the fastest,
                // which can differ between runs and between batch shapes, and so the vectors' last bits would.
                ["cudnn_conv_algo_search"] = "DEFAULT",
                // TF32 rounds matmul and convolution inputs to 10-bit mantissas: vectors drift from CPU ones
                // enough to matter when a CPU-built index is queried on a GPU or the other way round.
                ["use_tf32"] = "0",
            });
            sessionOptions.AppendExecutionProvider_CUDA(cudaOptions);
        }
        try
        {
            return new InferenceSession(onnxPath, sessionOptions);
        }
        catch (OnnxRuntimeException ex) when (!cuda)
        {
            throw new EmbeddingModelException(onnxPath, $"ONNX Runtime cannot load the model: {ex.Message}", ex);
        }
    }

    /// <summary>Checks the session against the manifest and returns the largest batch a run may carry.</summary>
    private static int CheckModelSignature(ModelManifest manifest, InferenceSession session, int maxBatchSize)
    {
        var path = manifest.OnnxPath;
        if (!session.InputMetadata.TryGetValue(manifest.InputName, out var input))
            throw new EmbeddingModelException(path, $"the manifest's input '{manifest.InputName}' is not a model input (inputs: {string.Join(", ", session.InputMetadata.Keys)})");
        if (session.InputMetadata.Count != 1)
            throw new EmbeddingModelException(path, $"the model needs {session.InputMetadata.Count} inputs ({string.Join(", ", session.InputMetadata.Keys)}); only single-input models are supported");
        if (!session.OutputMetadata.TryGetValue(manifest.OutputName, out var output))
            throw new EmbeddingModelException(path, $"the manifest's output '{manifest.OutputName}' is not a model output (outputs: {string.Join(", ", session.OutputMetadata.Keys)})");

        int[] expected = [-1, manifest.Channels, manifest.InputHeight, manifest.InputWidth];
        var dims = input.Dimensions;
        if (!input.IsTensor || input.ElementDataType != TensorElementType.Float || dims.Length != 4 ||
            dims[0] is not (-1 or 1) || !dims.AsSpan(1).SequenceEqual(expected.AsSpan(1)))
            throw new EmbeddingModelException(path,
                $"input '{manifest.InputName}' is {input.ElementDataType} [{string.Join(",", dims)}], the manifest describes float [batch,{string.Join(",", expected[1..])}]");

        var outDims = output.Dimensions;
        long perImage = outDims.Skip(1).Aggregate(1L, (p, d) => p * d);
        if (!output.IsTensor || output.ElementDataType != TensorElementType.Float || outDims.Length < 2 ||
            outDims[0] is not (-1 or 1) || perImage != manifest.EmbeddingDimension)
            throw new EmbeddingModelException(path,
                $"output '{manifest.OutputName}' is {output.ElementDataType} [{string.Join(",", outDims)}], the manifest describes float [batch,{manifest.EmbeddingDimension}]");

        // A model exported with a fixed batch of 1 still works, one image per run.
        return dims[0] == 1 ? 1 : maxBatchSize;
    }
}
