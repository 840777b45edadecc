using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace MedSearch.Embedding;

/// <summary>How a grey image becomes the model's channels.</summary>
public enum GreyMode
{
    /// <summary>The grey plane is copied into every channel.</summary>
    Replicate,
}

public enum ResizeMethod
{
    /// <summary>
    /// Triangle filter with pixel-centre alignment (align_corners=false): plain bilinear when enlarging,
    /// antialiased like PIL's BILINEAR when shrinking. See <see cref="ImagePreprocessor"/>.
    /// </summary>
    Bilinear,

    /// <summary>Keys cubic (a = -0.5), antialiased when shrinking, clamped to 0..255: PIL's BICUBIC.</summary>
    Bicubic,
}

/// <summary>The range pixels are mapped to before mean and std apply.</summary>
public enum PixelScale
{
    [JsonStringEnumMemberName("0-255")] Byte,
    [JsonStringEnumMemberName("0-1")] Unit,
}

/// <summary>
/// Everything needed to turn pixels into vectors with one ONNX model, stored as <c>manifest.json</c> next to the
/// model file. Indexes are tagged with <see cref="ModelId"/> so that vectors from different models (or a
/// rebuilt model file) are never compared with each other.
/// </summary>
public sealed class ModelManifest
{
    public const string FileName = "manifest.json";

    /// <summary>
    /// What a shipped manifest holds in 'sha256' until its owner has exported the model: the hash of a file
    /// MedSearch cannot know in advance, so loading says what to do instead of reporting a mismatch.
    /// </summary>
    public static readonly string UnsetSha256 = new('0', 64);

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // "name": null must fail as clearly as a missing "name".
        RespectNullableAnnotations = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false) },
    };

    public required string Name { get; init; }
    public required string Version { get; init; }

    /// <summary>The ONNX file, relative to the manifest's folder.</summary>
    public required string OnnxFile { get; init; }

    public required string InputName { get; init; }
    public required string OutputName { get; init; }
    public required int InputWidth { get; init; }
    public required int InputHeight { get; init; }
    public required int Channels { get; init; }
    public required GreyMode GreyMode { get; init; }
    public required ResizeMethod ResizeMethod { get; init; }
    public required PixelScale Scale { get; init; }

    /// <summary>Per channel, in the model's channel order and in the units of <see cref="Scale"/>.</summary>
    public required float[] Mean { get; init; }

    /// <summary>Per channel; the model sees (scaled pixel - mean) / std.</summary>
    public required float[] Std { get; init; }

    public required int EmbeddingDimension { get; init; }

    /// <summary>Whether vectors are L2-normalised (so that a dot product is the cosine similarity).</summary>
    public required bool L2Normalize { get; init; }

    /// <summary>Lower-case hex SHA-256 of the ONNX file.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Name plus the first 16 hex digits of the model's hash: changes whenever the vectors could.</summary>
    [JsonIgnore]
    public string ModelId => $"{Name}-{Sha256[..16]}";

    /// <summary>Full path of the verified ONNX file; set by <see cref="Load"/>, empty for a manifest built in memory.</summary>
    [JsonIgnore]
    public string OnnxPath { get; private set; } = "";

    /// <summary>Full path of the manifest file; set by <see cref="Load"/>, empty for a manifest built in memory.</summary>
    [JsonIgnore]
    public string ManifestPath { get; private set; } = "";

    /// <summary>
    /// The manifest a <c>--model</c> argument means: a model folder (its <c>manifest.json</c>) or a manifest file.
    /// </summary>
    /// <exception cref="EmbeddingModelException">The path is neither.</exception>
    public static string Resolve(string folderOrManifest)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folderOrManifest);
        var fullPath = Path.GetFullPath(folderOrManifest);
        if (Directory.Exists(fullPath))
        {
            var inside = Path.Combine(fullPath, FileName);
            return File.Exists(inside)
                ? inside
                : throw new EmbeddingModelException(fullPath, $"this model folder has no {FileName} (a model is a folder with the .onnx file and its {FileName}; see docs/models.md)");
        }
        return File.Exists(fullPath)
            ? fullPath
            : throw new EmbeddingModelException(fullPath, $"no such model: neither a model folder nor a {FileName} file");
    }

    /// <summary>The manifest as it is saved (camelCase, enum names as strings), for records that cite the model used.</summary>
    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this, JsonOptions)!.AsObject();

    /// <summary>
    /// Reads and checks a manifest and the model file it names, including the file's SHA-256 (a corrupt or
    /// swapped model would otherwise give plausible but wrong vectors).
    /// </summary>
    /// <exception cref="EmbeddingModelException">The manifest is missing, unreadable or invalid, or the model file is missing or does not match its hash.</exception>
    public static ModelManifest Load(string manifestPath)
    {
        var fullPath = Path.GetFullPath(manifestPath);
        if (!File.Exists(fullPath))
            throw new EmbeddingModelException(fullPath, "model manifest not found");

        ModelManifest? manifest;
        try
        {
            using var stream = File.OpenRead(fullPath);
            manifest = JsonSerializer.Deserialize<ModelManifest>(stream, JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new EmbeddingModelException(fullPath, $"not a valid model manifest: {ex.Message}", ex);
        }
        if (manifest is null)
            throw new EmbeddingModelException(fullPath, "not a valid model manifest: the file holds JSON null");
        manifest.Validate(fullPath);

        var onnxPath = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(fullPath)!, manifest.OnnxFile));
        if (!File.Exists(onnxPath))
            throw new EmbeddingModelException(fullPath, $"the model file '{manifest.OnnxFile}' it names does not exist ({onnxPath})");
        var actual = ComputeSha256(onnxPath);
        if (actual != manifest.Sha256)
            throw new EmbeddingModelException(onnxPath,
                $"sha256 mismatch: the file hashes to {actual} but {FileName} expects {manifest.Sha256}; " +
                "the model file is corrupt or was replaced (a built-in model's folder can be deleted to have it rebuilt; " +
                $"for a model you exported, put the hash of the file you trust in {FileName})");
        manifest.OnnxPath = onnxPath;
        manifest.ManifestPath = fullPath;
        return manifest;
    }

    /// <summary>Validates and writes the manifest atomically.</summary>
    public void Save(string manifestPath)
    {
        var fullPath = Path.GetFullPath(manifestPath);
        Validate(fullPath);
        AtomicFile.Write(fullPath, stream => JsonSerializer.Serialize(stream, this, JsonOptions));
    }

    public static string ComputeSha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private void Validate(string path)
    {
        static bool Blank(string s) => string.IsNullOrWhiteSpace(s);
        var problems = new List<string>();
        if (Blank(Name)) problems.Add("'name' is empty");
        if (Blank(Version)) problems.Add("'version' is empty");
        if (Blank(OnnxFile)) problems.Add("'onnxFile' is empty");
        else if (Path.IsPathRooted(OnnxFile)) problems.Add($"'onnxFile' must be relative to the manifest's folder, got '{OnnxFile}'");
        if (Blank(InputName)) problems.Add("'inputName' is empty");
        if (Blank(OutputName)) problems.Add("'outputName' is empty");
        if (InputWidth is <= 0 or > 8192) problems.Add($"'inputWidth' must be 1..8192, got {InputWidth}");
        if (InputHeight is <= 0 or > 8192) problems.Add($"'inputHeight' must be 1..8192, got {InputHeight}");
        if (Channels != 3) problems.Add($"'channels' must be 3 (only RGB-input models are supported), got {Channels}");
        if (!Enum.IsDefined(GreyMode)) problems.Add($"'greyMode' value {(int)GreyMode} is not supported");
        if (!Enum.IsDefined(ResizeMethod)) problems.Add($"'resizeMethod' value {(int)ResizeMethod} is not supported");
        if (!Enum.IsDefined(Scale)) problems.Add($"'scale' value {(int)Scale} is not supported");
        if (Mean.Length != Channels) problems.Add($"'mean' must have one value per channel ({Channels}), got {Mean.Length}");
        else if (!Mean.All(float.IsFinite)) problems.Add("'mean' holds a non-finite value");
        if (Std.Length != Channels) problems.Add($"'std' must have one value per channel ({Channels}), got {Std.Length}");
        else if (!Std.All(s => float.IsFinite(s) && s > 0)) problems.Add($"'std' values must be finite and positive, got [{string.Join(", ", Std)}]");
        if (EmbeddingDimension <= 0) problems.Add($"'embeddingDimension' must be positive, got {EmbeddingDimension}");
        if (Sha256.Length != 64 || !Sha256.All(char.IsAsciiHexDigitLower))
            problems.Add($"'sha256' must be 64 lower-case hex digits, got '{Sha256}'");
        else if (Sha256 == UnsetSha256)
            problems.Add($"'sha256' is still the placeholder of zeros: export the model (docs/models.md), then put the output of `sha256sum {OnnxFile}` here");
        if (problems.Count > 0)
            throw new EmbeddingModelException(path, "invalid model manifest: " + string.Join("; ", problems));
    }
}
