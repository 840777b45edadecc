using Google.Protobuf;
using MedSearch.Embedding;
using MedSearch.Embedding.Onnx;

namespace MedSearch.Tests.Support;

/// <summary>
/// A small encoder that is not ResNet18, built here from the onnx.proto messages so that tests of non-default
/// manifests need no model download: three 3x3 stride-2 convolutions with ReLU (3→16→32→64 channels), global
/// average pooling and Flatten, 3×96×96 in, 64-d out, opset 13, symbolic batch. Weights come from a fixed
/// integer generator, so the same seed gives the same bytes (and sha256) on every machine.
/// </summary>
/// <remarks>Compiled into MedSearch.Embedding.Tests too (a link in its project file).</remarks>
public static class TinyConvModel
{
    public const int Size = 96;
    public const int Dimensions = 64;
    public const string InputName = "pixels";
    public const string OutputName = "features";

    /// <summary>Writes <c>model.onnx</c> and its manifest into <paramref name="folder"/>; returns the manifest's path.</summary>
    /// <param name="batch">0 for a symbolic batch axis, or a fixed batch size (exporters sometimes leave 1).</param>
    public static string Write(string folder, string name = "tiny-conv", int seed = 1, int batch = 0,
        ResizeMethod resize = ResizeMethod.Bicubic)
    {
        Directory.CreateDirectory(folder);
        var onnxPath = Path.Combine(folder, "model.onnx");
        File.WriteAllBytes(onnxPath, Build(seed, batch).ToByteArray());
        var manifestPath = Path.Combine(folder, ModelManifest.FileName);
        new ModelManifest
        {
            Name = name,
            Version = "1",
            OnnxFile = "model.onnx",
            InputName = InputName,
            OutputName = OutputName,
            InputWidth = Size,
            InputHeight = Size,
            Channels = 3,
            GreyMode = GreyMode.Replicate,
            ResizeMethod = resize,
            Scale = PixelScale.Unit,
            Mean = [0.485f, 0.456f, 0.406f],
            Std = [0.229f, 0.224f, 0.225f],
            EmbeddingDimension = Dimensions,
            // The graph ends in average pooling, not a normalisation: the encoder must do it.
            L2Normalize = true,
            Sha256 = ModelManifest.ComputeSha256(onnxPath),
        }.Save(manifestPath);
        return manifestPath;
    }

    public static ModelProto Build(int seed, int batch = 0)
    {
        var graph = new GraphProto { Name = "tiny_conv" };
        var weights = new Lcg(seed);
        string x = InputName;
        int channels = 3;
        foreach (var (outChannels, index) in new[] { (16, 1), (32, 2), (64, 3) })
        {
            var w = $"conv{index}.weight";
            var b = $"conv{index}.bias";
            // He initialisation keeps activations from fading to zero through the ReLUs.
            float scale = MathF.Sqrt(2f / (channels * 9));
            graph.Initializer.Add(Tensor(w, [outChannels, channels, 3, 3], weights.Next(outChannels * channels * 9, scale)));
            graph.Initializer.Add(Tensor(b, [outChannels], weights.Next(outChannels, 0.1f)));
            var conv = new NodeProto { OpType = "Conv", Name = $"conv{index}", Input = { x, w, b }, Output = { $"conv{index}.out" } };
            conv.Attribute.Add(Ints("kernel_shape", 3, 3));
            conv.Attribute.Add(Ints("strides", 2, 2));
            conv.Attribute.Add(Ints("pads", 1, 1, 1, 1));
            graph.Node.Add(conv);
            graph.Node.Add(new NodeProto { OpType = "Relu", Name = $"relu{index}", Input = { $"conv{index}.out" }, Output = { $"relu{index}.out" } });
            x = $"relu{index}.out";
            channels = outChannels;
        }
        graph.Node.Add(new NodeProto { OpType = "GlobalAveragePool", Name = "pool", Input = { x }, Output = { "pooled" } });
        var flatten = new NodeProto { OpType = "Flatten", Name = "flatten", Input = { "pooled" }, Output = { OutputName } };
        flatten.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        graph.Node.Add(flatten);
        graph.Input.Add(Value(InputName, batch, 3, Size, Size));
        graph.Output.Add(Value(OutputName, batch, Dimensions));

        var model = new ModelProto { IrVersion = 8, ProducerName = "MedSearch tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model;
    }

    private static TensorProto Tensor(string name, long[] dims, float[] values) => new()
    {
        Name = name,
        DataType = (int)TensorProto.Types.DataType.Float,
        Dims = { dims },
        FloatData = { values },
    };

    private static AttributeProto Ints(string name, params long[] values) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Ints, Ints = { values } };

    private static ValueInfoProto Value(string name, int batch, params int[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(batch == 0 ? new TensorShapeProto.Types.Dimension { DimParam = "batch" } : new TensorShapeProto.Types.Dimension { DimValue = batch });
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    /// <summary>Numerical Recipes' 32-bit LCG: the same numbers from the same seed on any runtime.</summary>
    private sealed class Lcg(int seed)
    {
        private uint _state = (uint)seed;

        /// <summary>Uniform values in [-scale, scale).</summary>
        public float[] Next(int count, float scale)
        {
            var values = new float[count];
            for (int i = 0; i < count; i++)
            {
                _state = _state * 1664525u + 1013904223u;
                values[i] = ((_state >> 8) / 16777216f * 2 - 1) * scale;
            }
            return values;
        }
    }
}
