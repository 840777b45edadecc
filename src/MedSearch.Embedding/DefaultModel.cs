using Google.Protobuf;
using MedSearch.Embedding.Onnx;

namespace MedSearch.Embedding;

/// <summary>
/// The built-in encoder: ImageNet ResNet18 from the Microsoft.ML.DnnImageFeaturizer.ResNet18 package, turned
/// into one batchable ONNX graph that maps RGB pixels (0..255) to L2-normalised 512-d vectors.
/// </summary>
/// <remarks>
/// The package ships two graphs with a fixed batch of 1: ResNetPreprocess.onnx (splits the RGB planes, reorders
/// them to BGR and subtracts a 3x224x224 BGR mean image, B≈103, G≈116, R≈123) and the CNTK-exported ResNet18
/// (input <c>Input247</c>, output <c>Pooling395_Output_0</c> = global average pool, [1,512,1,1]). The prepared
/// model chains them, appends Squeeze + L2 normalisation, and makes the batch dimension symbolic, which is
/// sound because neither graph reshapes across the batch axis (no Reshape, Flatten or Gemm). Opset 8 is kept:
/// the CNTK BatchNormalization nodes carry the <c>spatial</c> attribute that opset 9 removed.
/// </remarks>
public static class DefaultModel
{
    public const string Name = "resnet18-imagenet";

    /// <summary>Bumped whenever <see cref="Build"/> changes, so that an older prepared model is rebuilt.</summary>
    public const string Version = "1";

    public const string OnnxFileName = "model.onnx";
    public const string InputName = "image";
    public const string OutputName = "embedding";
    public const int InputSize = 224;
    public const int Dimensions = 512;

    private const string BatchDimension = "batch";
    private const string PackageName = "Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1";
    private const string PreprocessInput = "OriginalInput";
    private const string PreprocessOutput = "PreprocessedInput";
    private const string ResNetInput = "Input247";
    private const string ResNetOutput = "Pooling395_Output_0";
    private const string PreprocessPrefix = "preprocess/";

    /// <summary>Where the build copies the package's model files (next to the application's assemblies).</summary>
    public static string PackagedModelsDirectory => Path.Combine(AppContext.BaseDirectory, "DnnImageModels");

    public static string PackagedPreprocessPath => Path.Combine(PackagedModelsDirectory, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
    public static string PackagedResNet18Path => Path.Combine(PackagedModelsDirectory, "ResNet18Onnx", "ResNet18.onnx");

    /// <summary>The folder the prepared model lives in: <c>{dataDir}/models/resnet18-imagenet</c>.</summary>
    public static string ModelDirectory(string dataDir) => Path.Combine(dataDir, "models", Name);

    public static string ManifestPath(string dataDir) => Path.Combine(ModelDirectory(dataDir), ModelManifest.FileName);

    /// <summary>
    /// Returns the prepared model's manifest, building the model first if it is absent, of another version,
    /// or fails verification (corrupt or replaced file). Safe to call concurrently from several processes:
    /// each writes a complete file under a temporary name and renames it, and the build is deterministic, so
    /// whichever rename lands last leaves the same bytes.
    /// </summary>
    /// <exception cref="EmbeddingModelException">The packaged model files are missing or not the expected graphs.</exception>
    public static ModelManifest Prepare(string dataDir)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDir);
        var manifestPath = ManifestPath(dataDir);
        if (File.Exists(manifestPath))
        {
            try
            {
                var existing = ModelManifest.Load(manifestPath);
                if (existing.Name == Name && existing.Version == Version) return existing;
            }
            catch (EmbeddingModelException)
            {
                // A damaged or half-deleted model is rebuilt from the package rather than left to fail every start.
            }
        }

        var directory = ModelDirectory(dataDir);
        Directory.CreateDirectory(directory);
        RemoveAbandonedTempFiles(directory);
        var model = Build(Read(PackagedPreprocessPath), Read(PackagedResNet18Path));
        var onnxPath = Path.Combine(directory, OnnxFileName);
        AtomicFile.Write(onnxPath, model.WriteTo);

        new ModelManifest
        {
            Name = Name,
            Version = Version,
            OnnxFile = OnnxFileName,
            InputName = InputName,
            OutputName = OutputName,
            InputWidth = InputSize,
            InputHeight = InputSize,
            Channels = 3,
            GreyMode = GreyMode.Replicate,
            ResizeMethod = ResizeMethod.Bilinear,
            // The graph subtracts its own mean image from raw 0..255 values.
            Scale = PixelScale.Byte,
            Mean = [0f, 0f, 0f],
            Std = [1f, 1f, 1f],
            EmbeddingDimension = Dimensions,
            L2Normalize = true,
            Sha256 = ModelManifest.ComputeSha256(onnxPath),
        }.Save(manifestPath);
        // Loading again re-hashes what is on disk, so a model overwritten by a concurrent writer is still verified.
        return ModelManifest.Load(manifestPath);
    }

    /// <summary>
    /// Deletes temp files a killed process left (63 MB each). Only old ones: a young one may belong to a
    /// process writing right now, whose rename would then fail.
    /// </summary>
    private static void RemoveAbandonedTempFiles(string directory)
    {
        var cutoff = DateTime.UtcNow - TimeSpan.FromHours(1);
        foreach (var temp in new DirectoryInfo(directory).EnumerateFiles("*.tmp"))
        {
            if (temp.LastWriteTimeUtc >= cutoff) continue;
            try
            {
                temp.Delete();
            }
            catch (IOException)
            {
                // Another process removed it first, or it is still open; the next preparation tries again.
            }
        }
    }

    private static ModelProto Read(string path)
    {
        if (!File.Exists(path))
            throw new EmbeddingModelException(path,
                $"packaged model file not found; the MedSearch.Embedding build copies it from the {PackageName} NuGet package " +
                "into DnnImageModels/ next to the application (a publish must keep that folder)");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            return ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new EmbeddingModelException(path, $"not a readable ONNX model: {ex.Message}", ex);
        }
    }

    private static ModelProto Build(ModelProto preprocess, ModelProto resnet)
    {
        var preprocessGraph = preprocess.Graph;
        var resnetGraph = resnet.Graph;
        Expect(preprocess, PackagedPreprocessPath, PreprocessInput, [1, 3, InputSize, InputSize], PreprocessOutput, [1, 3, InputSize, InputSize]);
        Expect(resnet, PackagedResNet18Path, ResNetInput, [1, 3, InputSize, InputSize], ResNetOutput, [1, Dimensions, 1, 1]);

        // The preprocess graph's names get a prefix so they cannot collide with ResNet's; its input becomes the
        // model input, and its output takes the name ResNet's nodes already read, which splices the two.
        Rename(preprocessGraph, PackagedPreprocessPath, name => name switch
        {
            PreprocessInput => InputName,
            PreprocessOutput => ResNetInput,
            _ => PreprocessPrefix + name,
        });
        var resnetInput = resnetGraph.Input.Single();
        var resnetOutput = resnetGraph.Output.Single();
        var preprocessNodeNames = 0;
        foreach (var node in preprocessGraph.Node)
            if (node.Name.Length == 0) node.Name = $"{PreprocessPrefix}{node.OpType}_{preprocessNodeNames++}";

        var graph = new GraphProto
        {
            Name = "medsearch_resnet18_embedding",
            DocString = "RGB 0..255 [batch,3,224,224] -> BGR minus ImageNet mean image -> ResNet18 (ImageNet, CNTK) " +
                        $"global average pool -> L2-normalised [batch,{Dimensions}]. Built by MedSearch from {PackageName}.",
        };
        graph.Node.Add(preprocessGraph.Node);
        graph.Node.Add(resnetGraph.Node);
        graph.Initializer.Add(preprocessGraph.Initializer);
        graph.Initializer.Add(resnetGraph.Initializer);
        graph.Input.Add(preprocessGraph.Input);
        graph.ValueInfo.Add(preprocessGraph.ValueInfo);
        graph.ValueInfo.Add(resnetInput);
        graph.ValueInfo.Add(resnetGraph.ValueInfo);
        graph.ValueInfo.Add(resnetOutput);
        AppendL2Normalisation(graph, ResNetOutput);

        foreach (var value in graph.Input.Concat(graph.ValueInfo).Concat(graph.Output))
            MakeBatchSymbolic(value);
        CheckNamesUnique(graph);

        var model = new ModelProto
        {
            // IR 4: initializers are constants, not graph inputs a caller could override (none are listed as inputs).
            IrVersion = Math.Max(4, Math.Max(preprocess.IrVersion, resnet.IrVersion)),
            ProducerName = "MedSearch.Embedding",
            ProducerVersion = Version,
            DocString = graph.DocString,
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 8 });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "source_package", Value = PackageName });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "source_producer", Value = $"{resnet.ProducerName} {resnet.ProducerVersion}".Trim() });
        return model;
    }

    /// <summary>
    /// Squeeze [batch,512,1,1] to [batch,512], then divide by max(‖x‖₂, 1e-12) (PyTorch's F.normalize): the floor
    /// keeps an all-zero feature vector (possible after ReLU) at zero instead of NaN. All ops exist at opset 8.
    /// </summary>
    private static void AppendL2Normalisation(GraphProto graph, string features)
    {
        const string squeezed = "embedding/features", norm = "embedding/norm", epsilon = "embedding/epsilon", clamped = "embedding/norm_clamped";
        var squeeze = Node("Squeeze", "embedding/Squeeze", [features], [squeezed]);
        squeeze.Attribute.Add(new AttributeProto { Name = "axes", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 2, 3 } });
        var reduce = Node("ReduceL2", "embedding/ReduceL2", [squeezed], [norm]);
        reduce.Attribute.Add(new AttributeProto { Name = "axes", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1 } });
        reduce.Attribute.Add(new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        graph.Node.Add(squeeze);
        graph.Node.Add(reduce);
        graph.Node.Add(Node("Max", "embedding/Max", [norm, epsilon], [clamped]));
        graph.Node.Add(Node("Div", "embedding/Div", [squeezed, clamped], [OutputName]));
        graph.Initializer.Add(new TensorProto { Name = epsilon, DataType = (int)TensorProto.Types.DataType.Float, Dims = { 1 }, FloatData = { 1e-12f } });

        graph.ValueInfo.Add(FloatValue(squeezed, Dimensions));
        graph.ValueInfo.Add(FloatValue(norm, 1));
        graph.ValueInfo.Add(FloatValue(clamped, 1));
        graph.Output.Add(FloatValue(OutputName, Dimensions));

        static NodeProto Node(string op, string name, string[] inputs, string[] outputs) =>
            new() { OpType = op, Name = name, Input = { inputs }, Output = { outputs } };

        // [1, width]; the batch dimension is made symbolic with all the others afterwards.
        static ValueInfoProto FloatValue(string name, int width) => new()
        {
            Name = name,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor
                {
                    ElemType = (int)TensorProto.Types.DataType.Float,
                    Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimValue = 1 }, new TensorShapeProto.Types.Dimension { DimValue = width } } },
                },
            },
        };
    }

    private static void Expect(ModelProto model, string path, string input, long[] inputShape, string output, long[] outputShape)
    {
        var graph = model.Graph ?? throw Unexpected(path, "the model has no graph");
        if (graph.Input.Count != 1 || graph.Input[0].Name != input || !HasShape(graph.Input[0], inputShape))
            throw Unexpected(path, $"expected one input '{input}' [{string.Join(",", inputShape)}], found {Describe(graph.Input)}");
        if (graph.Output.Count != 1 || graph.Output[0].Name != output || !HasShape(graph.Output[0], outputShape))
            throw Unexpected(path, $"expected one output '{output}' [{string.Join(",", outputShape)}], found {Describe(graph.Output)}");
        if (model.OpsetImport.Any(o => o.Domain is not ("" or "ai.onnx") || o.Version > 8))
            throw Unexpected(path, $"expected only the default ONNX opset up to 8, found {string.Join(", ", model.OpsetImport.Select(o => $"'{o.Domain}' v{o.Version}"))}");
        var batchMixing = graph.Node.FirstOrDefault(n => n.OpType is "Reshape" or "Flatten" or "Gemm" or "MatMul");
        if (batchMixing is not null)
            throw Unexpected(path, $"node '{batchMixing.Name}' ({batchMixing.OpType}) could depend on the fixed batch of 1, so the batch cannot be made symbolic");

        static bool HasShape(ValueInfoProto value, long[] shape) =>
            value.Type?.TensorType is { ElemType: (int)TensorProto.Types.DataType.Float, Shape: { } s } &&
            s.Dim.Select(d => d.HasDimValue ? d.DimValue : -1).SequenceEqual(shape);

        static string Describe(IEnumerable<ValueInfoProto> values) => string.Join(", ", values.Select(v =>
            $"'{v.Name}' [{string.Join(",", v.Type?.TensorType?.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString() : d.DimParam) ?? [])}]"));
    }

    private static EmbeddingModelException Unexpected(string path, string reason) =>
        new(path, $"not the ResNet graph this version of MedSearch was built for ({PackageName}): {reason}");

    private static void Rename(GraphProto graph, string path, Func<string, string> rename)
    {
        foreach (var node in graph.Node)
        {
            if (node.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0))
                throw Unexpected(path, $"node '{node.Name}' ({node.OpType}) has a subgraph, whose outer-scope names renaming would not follow");
            // An empty name marks an omitted optional input or output and must stay empty.
            for (int i = 0; i < node.Input.Count; i++) if (node.Input[i].Length > 0) node.Input[i] = rename(node.Input[i]);
            for (int i = 0; i < node.Output.Count; i++) if (node.Output[i].Length > 0) node.Output[i] = rename(node.Output[i]);
            if (node.Name.Length > 0) node.Name = rename(node.Name);
        }
        foreach (var tensor in graph.Initializer) tensor.Name = rename(tensor.Name);
        foreach (var sparse in graph.SparseInitializer.Where(s => s.Values is not null)) sparse.Values.Name = rename(sparse.Values.Name);
        foreach (var value in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo)) value.Name = rename(value.Name);
        foreach (var annotation in graph.QuantizationAnnotation)
        {
            annotation.TensorName = rename(annotation.TensorName);
            foreach (var entry in annotation.QuantParameterTensorNames) entry.Value = rename(entry.Value);
        }
    }

    private static void MakeBatchSymbolic(ValueInfoProto value)
    {
        var dims = value.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count == 0 || !dims[0].HasDimValue || dims[0].DimValue != 1)
            throw new InvalidOperationException($"value '{value.Name}' does not have a leading batch dimension of 1, so it cannot be made symbolic");
        dims[0].DimParam = BatchDimension;
    }

    private static void CheckNamesUnique(GraphProto graph)
    {
        var defined = new HashSet<string>(StringComparer.Ordinal);
        var produced = graph.Input.Select(v => v.Name)
            .Concat(graph.Initializer.Select(t => t.Name))
            .Concat(graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0));
        foreach (var name in produced)
            if (!defined.Add(name))
                throw new InvalidOperationException($"merging the ResNet graphs defines '{name}' twice");
        foreach (var input in graph.Node.SelectMany(n => n.Input).Where(i => i.Length > 0))
            if (!defined.Contains(input))
                throw new InvalidOperationException($"merged graph reads '{input}', which nothing defines");
        var nodeNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(n => n.Name.Length > 0))
            if (!nodeNames.Add(node.Name))
                throw new InvalidOperationException($"merging the ResNet graphs gives two nodes the name '{node.Name}'");
    }
}
