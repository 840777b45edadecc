using System.Globalization;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// Conditions a case must meet to be a neighbour. Empty lists and unset bounds do not restrict; lists match any
/// of their values (case-insensitively for header facts, exactly for labels, which are the caller's vocabulary);
/// a case without the fact does not match a non-empty list or a bound.
/// </summary>
public sealed record CaseFilter
{
    public IReadOnlyList<string> Modalities { get; init; } = [];
    public IReadOnlyList<string> BodyParts { get; init; } = [];
    public IReadOnlyList<string> ViewPositions { get; init; } = [];
    public IReadOnlyList<string> Lateralities { get; init; } = [];
    public IReadOnlyList<string> Sexes { get; init; } = [];
    public double? MinAge { get; init; }
    public double? MaxAge { get; init; }
    public DateOnly? StudyDateFrom { get; init; }
    public DateOnly? StudyDateTo { get; init; }
    public IReadOnlyList<string> LabelsAny { get; init; } = [];
    public IReadOnlyList<string> LabelsAll { get; init; } = [];
    public IReadOnlyList<string> LabelsNone { get; init; } = [];
    /// <summary>Metadata keys that must have exactly these values; checked on the stored record.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    public static CaseFilter None { get; } = new();

    /// <summary>True when some condition besides <see cref="Metadata"/> is set, i.e. the catalog has something to test.</summary>
    public bool HasCatalogConditions =>
        Modalities.Count > 0 || BodyParts.Count > 0 || ViewPositions.Count > 0 || Lateralities.Count > 0 || Sexes.Count > 0
        || MinAge is not null || MaxAge is not null || StudyDateFrom is not null || StudyDateTo is not null
        || LabelsAny.Count > 0 || LabelsAll.Count > 0 || LabelsNone.Count > 0;

    /// <summary>The conditions on catalogued facts (everything but <see cref="Metadata"/>).</summary>
    /// <remarks>Runs for every node a filtered graph search visits: loops, no delegates.</remarks>
    public bool Matches(CatalogEntry e) =>
        AnyOf(Modalities, e.Modality) && AnyOf(BodyParts, e.BodyPart) && AnyOf(ViewPositions, e.ViewPosition)
        && AnyOf(Lateralities, e.Laterality) && AnyOf(Sexes, e.Sex)
        && (MinAge is null || e.Age >= MinAge) && (MaxAge is null || e.Age <= MaxAge)
        && (StudyDateFrom is null || e.StudyDate >= StudyDateFrom) && (StudyDateTo is null || e.StudyDate <= StudyDateTo)
        && (LabelsAny.Count == 0 || CountIn(LabelsAny, e.Labels) > 0)
        && CountIn(LabelsAll, e.Labels) == LabelsAll.Count
        && CountIn(LabelsNone, e.Labels) == 0;

    /// <summary>How many of <paramref name="wanted"/> the case carries.</summary>
    private static int CountIn(IReadOnlyList<string> wanted, string[] labels)
    {
        int count = 0;
        for (int i = 0; i < wanted.Count; i++)
            if (Array.IndexOf(labels, wanted[i]) >= 0) count++;
        return count;
    }

    /// <summary>The <see cref="Metadata"/> conditions, which only the stored record can answer.</summary>
    public bool MatchesMetadata(CaseRecord record) =>
        Metadata.All(m => record.Metadata.TryGetValue(m.Key, out var v) && v == m.Value);

    private static bool AnyOf(IReadOnlyList<string> wanted, string? value)
    {
        if (wanted.Count == 0) return true;
        if (value is null) return false;
        foreach (var w in wanted)
            if (string.Equals(w, value, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>Parses a YYYY-MM-DD bound; the message names <paramref name="field"/>.</summary>
    public static DateOnly? ParseDate(string text, string field)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (DateOnly.TryParseExact(text.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)) return date;
        throw new ArgumentException($"{field}: `{text}` is not a date in YYYY-MM-DD form", field);
    }
}
