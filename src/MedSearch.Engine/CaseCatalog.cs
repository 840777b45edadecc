using System.Collections.Concurrent;
using System.Globalization;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// The facts of one case that filters, exclusions, grouping and statistics look at, taken from its record's
/// metadata (<see cref="CaseFacts"/> keys) and labels. Immutable: a changed case gets a new entry.
/// </summary>
public sealed class CatalogEntry
{
    public required string Key { get; init; }
    public string? Modality { get; init; }
    public string? BodyPart { get; init; }
    public string? ViewPosition { get; init; }
    public string? Laterality { get; init; }
    public string? Sex { get; init; }
    /// <summary>Years; NaN when unknown.</summary>
    public double Age { get; init; } = double.NaN;
    public DateOnly? StudyDate { get; init; }
    public string? StudyInstanceUid { get; init; }
    public string? SeriesInstanceUid { get; init; }
    public string? PatientHash { get; init; }
    public required string[] Labels { get; init; }

    public static CatalogEntry From(CaseRecord record, Func<string, string>? intern = null)
    {
        intern ??= static s => s;
        string? Fact(string key) => record.Metadata.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? intern(v.Trim()) : null;
        var c = CultureInfo.InvariantCulture;
        return new CatalogEntry
        {
            Key = record.Key,
            Modality = Fact("modality"),
            BodyPart = Fact("body_part"),
            ViewPosition = Fact("view_position"),
            Laterality = Fact("laterality"),
            Sex = Fact("sex"),
            Age = Fact("age") is { } age && double.TryParse(age, NumberStyles.Float, c, out var years) ? years : double.NaN,
            StudyDate = Fact("study_date") is { } date && DateOnly.TryParseExact(date, "yyyy-MM-dd", c, DateTimeStyles.None, out var day) ? day : null,
            StudyInstanceUid = Fact("study_instance_uid"),
            SeriesInstanceUid = Fact("series_instance_uid"),
            PatientHash = Fact("patient_hash"),
            Labels = record.Labels.Select(intern).ToArray(),
        };
    }
}

/// <summary>
/// In-memory catalog of every stored case's <see cref="CatalogEntry"/>, the payload index beside the vector
/// index: filters are evaluated on it inside the graph search (one dictionary lookup per visited node, where a
/// store read would parse a whole record), and deletes by series, study or patient and the statistics read it
/// instead of scanning the store. Built from the store on open and kept in step by the collection's writes.
/// </summary>
/// <remarks>About 150 bytes a case: repeated values (modality, UIDs shared by a study, labels) are interned.</remarks>
public sealed class CaseCatalog
{
    private readonly ConcurrentDictionary<ulong, CatalogEntry> _entries = new();
    private readonly ConcurrentDictionary<string, string> _strings = new(StringComparer.Ordinal);

    public int Count => _entries.Count;

    public void Set(CaseRecord record) => _entries[record.Id] = CatalogEntry.From(record, Intern);

    public void Remove(ulong id) => _entries.TryRemove(id, out _);

    public bool TryGet(ulong id, out CatalogEntry entry) => _entries.TryGetValue(id, out entry!);

    public IEnumerable<KeyValuePair<ulong, CatalogEntry>> Entries => _entries;

    private string Intern(string value) => _strings.GetOrAdd(value, value);
}
