using System.Text.Json.Serialization;

namespace MedSearch.Engine;

/// <summary>What a search compares: single images, whole series (volumes), or whole studies.</summary>
public enum VolumeLevel { Instance, Series, Study }

internal static class VolumeLevelNames
{
    /// <summary>The level as messages name it.</summary>
    public static string Name(this VolumeLevel level) => level switch
    {
        VolumeLevel.Series => "series",
        VolumeLevel.Study => "study",
        _ => "instance",
    };
}

/// <summary>How the embeddings of a series' sampled slices become one series embedding (then L2-normalised).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Pooling>))]
public enum Pooling
{
    Mean,
    /// <summary>Per dimension: robust to a few unusual slices (contrast, artefacts).</summary>
    Median,
    /// <summary>Per dimension: keeps a finding present in only a few slices.</summary>
    Max,
    /// <summary>Mean and max concatenated: twice the dimensions.</summary>
    MeanMax,
}

/// <summary>
/// How series and studies are embedded: recorded in collection.json, since a series vector made another way is
/// not comparable. Changing them only re-pools (series and study vectors are derived from the stored slice
/// embeddings, never stored themselves).
/// </summary>
public sealed record VolumeOptions
{
    public const int DefaultSlices = 16;

    /// <summary>Slices sampled evenly along the volume and pooled; all of them when a series has fewer.</summary>
    [JsonPropertyName("slicesPerSeries")]
    public int SlicesPerSeries { get; init; } = DefaultSlices;

    [JsonPropertyName("pooling")]
    public Pooling Pooling { get; init; } = Pooling.Mean;

    /// <summary>The series/study vector length for slice embeddings of <paramref name="dimensions"/>.</summary>
    public int DimensionsFor(int dimensions) => Pooling == Pooling.MeanMax ? 2 * dimensions : dimensions;

    /// <exception cref="ArgumentException">A slice count outside 1..1024.</exception>
    public VolumeOptions Validated() =>
        SlicesPerSeries is >= 1 and <= 1024 ? this
        : throw new ArgumentException($"slices per series must be between 1 and 1024, got {SlicesPerSeries}");

    public override string ToString() => $"{Pooling.ToString().ToLowerInvariant()} of up to {SlicesPerSeries} slices";
}
