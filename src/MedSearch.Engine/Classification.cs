using System.Text.Json;
using System.Text.Json.Serialization;

namespace MedSearch.Engine;

/// <summary>How much each of the k neighbours counts in a classification.</summary>
public enum Weighting
{
    Uniform,
    /// <summary>Weight = cosine similarity, negatives counting 0.</summary>
    Similarity,
    /// <summary>Weight = exp(similarity / temperature).</summary>
    Softmax,
}

/// <summary>One label's score, its operating point and the decision there.</summary>
public sealed record LabelDecision(string Label, double Score, double Threshold, bool Positive, int Neighbours, string OperatingPoint);

/// <param name="Missing">Parts of the case space that did not answer in time; their cases may be missing from the neighbours.</param>
public sealed record Classification(IReadOnlyList<LabelDecision> Labels, IReadOnlyList<Neighbour> Neighbours, int UnlabelledNeighbours, string ModelId,
    IReadOnlyList<string>? Missing = null)
{
    /// <summary>Some part of the case space did not answer in time (see <see cref="Missing"/>).</summary>
    public bool Partial => Missing is { Count: > 0 };

    /// <summary>
    /// The weighted vote per label of <paramref name="result"/>'s neighbours, decided at each label's operating
    /// point; a partial search gives a partial classification.
    /// </summary>
    public static Classification Decide(SearchResult result, VolumeLevel level, OperatingPoints points, Weighting weighting, double temperature)
    {
        // Stored operating points were chosen on instance votes; a series or study vote is decided at 0.5.
        var decidedAt = level == VolumeLevel.Instance ? points : OperatingPoints.None;
        var labels = NeighbourVote.Classify(result.Neighbours, weighting, temperature, decidedAt);
        return new Classification(labels, result.Neighbours, result.UnlabelledNeighbours, result.ModelId, result.Missing);
    }
}

/// <summary>
/// The decision threshold of each label, chosen on a validation set for a wanted sensitivity or specificity
/// (<c>medsearch eval</c> writes <see cref="FileName"/> in the data directory). A label without one uses 0.5.
/// </summary>
public sealed class OperatingPoints
{
    public const string FileName = "operating-points.json";
    public const double DefaultThreshold = 0.5;
    public const string DefaultName = "default";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>
    /// A label's threshold and the name Classify reports with it. Points chosen by <c>medsearch eval</c> also record
    /// the k and weighting they were chosen for — the threshold only means its sensitivity and specificity for
    /// those — and the rates the evaluation measured there.
    /// </summary>
    public sealed record Point(double Threshold, string Name, int? K = null, string? Weighting = null,
        double? ExpectedSensitivity = null, double? ExpectedSpecificity = null, string? ChosenOn = null);

    private sealed record FileFormat([property: JsonRequired] Dictionary<string, Point> Labels);

    public IReadOnlyDictionary<string, Point> Labels { get; }

    private OperatingPoints(IReadOnlyDictionary<string, Point> labels) => Labels = labels;

    public static OperatingPoints None { get; } = new(new Dictionary<string, Point>());

    /// <summary>Reads the data directory's operating points; none when the file is absent.</summary>
    /// <exception cref="CollectionException">The file exists but is unreadable or holds a threshold outside 0..1.</exception>
    public static OperatingPoints Load(string dataPath)
    {
        var path = Path.Combine(dataPath, FileName);
        if (!File.Exists(path)) return None;
        FileFormat? file;
        try
        {
            file = JsonSerializer.Deserialize<FileFormat>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new CollectionException($"{path} is not a valid operating-points file: {e.Message}");
        }
        var labels = file?.Labels ?? throw new CollectionException($"{path} is empty");
        foreach (var (label, point) in labels)
            if (point is null || !(point.Threshold is >= 0 and <= 1) || string.IsNullOrWhiteSpace(point.Name))
                throw new CollectionException($"{path}: label `{label}` needs a threshold between 0 and 1 and a name");
        return new OperatingPoints(labels);
    }

    public Point For(string label) => Labels.TryGetValue(label, out var point) ? point : new Point(DefaultThreshold, DefaultName);

    /// <summary>
    /// Stores <paramref name="points"/> in the data directory, replacing those labels' points and keeping the
    /// others; atomic, so a reader (a starting server) sees the old file or the new one. A running server reads
    /// the file at start.
    /// </summary>
    /// <exception cref="ArgumentException">A threshold outside 0..1 or an empty name.</exception>
    public static OperatingPoints Save(string dataPath, IReadOnlyDictionary<string, Point> points)
    {
        foreach (var (label, point) in points)
            if (!(point.Threshold is >= 0 and <= 1) || string.IsNullOrWhiteSpace(point.Name))
                throw new ArgumentException($"operating point of `{label}`: threshold {point.Threshold} must be between 0 and 1, with a name", nameof(points));
        var merged = new SortedDictionary<string, Point>(Load(dataPath).Labels.ToDictionary(), StringComparer.Ordinal);
        foreach (var (label, point) in points) merged[label] = point;
        var file = new FileFormat(new Dictionary<string, Point>(merged, StringComparer.Ordinal));
        Embedding.AtomicFile.Write(Path.Combine(dataPath, FileName), stream => JsonSerializer.Serialize(stream, file, Json));
        return new OperatingPoints(file.Labels);
    }
}
