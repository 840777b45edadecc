using System.Globalization;

namespace MedSearch.Evaluation;

/// <summary>An age band in whole years, inclusive; <see cref="To"/> null means "and older".</summary>
public sealed record AgeBand(int From, int? To)
{
    public string Name => To is { } to ? $"age {From}-{to}" : $"age {From}+";

    public bool Contains(double years) => years >= From && (To is not { } to || years < to + 1);
}

/// <summary>
/// The subgroups reported beside the overall metrics: sex (DICOM's M, F, O, or a labels.csv column) and age
/// bands (default 0–17, 18–39, 40–64, 65+). A case without the fact falls in "unknown", which is reported
/// like any group so that missing demographics are visible rather than silently dropped.
/// </summary>
public sealed class Subgroups
{
    public const string Unknown = "unknown";
    public const string SexDimension = "sex";
    public const string AgeDimension = "age";

    public static IReadOnlyList<AgeBand> DefaultAgeBands { get; } = [new(0, 17), new(18, 39), new(40, 64), new(65, null)];

    public IReadOnlyList<AgeBand> AgeBands { get; }

    public Subgroups(IReadOnlyList<AgeBand> ageBands)
    {
        for (int i = 0; i < ageBands.Count; i++)
        {
            var band = ageBands[i];
            if (band.From < 0 || band.To < band.From)
                throw new ArgumentException($"age band {band.Name} is empty or negative", nameof(ageBands));
            if (i > 0 && band.From <= ageBands[i - 1].To)
                throw new ArgumentException($"age bands {ageBands[i - 1].Name} and {band.Name} overlap or are out of order", nameof(ageBands));
            if (band.To is null && i < ageBands.Count - 1)
                throw new ArgumentException($"only the last age band may be open-ended ({band.Name})", nameof(ageBands));
        }
        AgeBands = ageBands;
    }

    /// <summary>Parses "0-17,18-39,40-64,65+" (the last band may be open-ended with + or a trailing -).</summary>
    /// <exception cref="ArgumentException">Names the band that does not parse.</exception>
    public static IReadOnlyList<AgeBand> ParseAgeBands(string text)
    {
        var bands = new List<AgeBand>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var open = part.EndsWith('+') || part.EndsWith('-');
            var bounds = part.TrimEnd('+', '-').Split('-', StringSplitOptions.TrimEntries);
            if (open && bounds.Length == 1 && Int(bounds[0]) is { } from) bands.Add(new AgeBand(from, null));
            else if (!open && bounds.Length == 2 && Int(bounds[0]) is { } low && Int(bounds[1]) is { } high) bands.Add(new AgeBand(low, high));
            else throw new ArgumentException($"age band `{part}`: expected FROM-TO or FROM+ in whole years, e.g. 0-17,18-39,40-64,65+");
        }
        if (bands.Count == 0) throw new ArgumentException("age bands: none given");
        return bands;

        static int? Int(string s) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    /// <summary>The case's sex group from its metadata: M, F, O as DICOM codes them (also male/female spelled out), else unknown.</summary>
    public static string SexOf(IReadOnlyDictionary<string, string> metadata) =>
        metadata.TryGetValue("sex", out var sex) ? sex.Trim().ToUpperInvariant() switch
        {
            "M" or "MALE" => "sex M",
            "F" or "FEMALE" => "sex F",
            "O" or "OTHER" => "sex O",
            _ => "sex " + Unknown,
        } : "sex " + Unknown;

    /// <summary>The case's age band from its metadata's age in years (DICOM's Patient's Age, or a labels.csv column).</summary>
    public string AgeOf(IReadOnlyDictionary<string, string> metadata)
    {
        if (metadata.TryGetValue("age", out var text)
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var years) && years >= 0)
            foreach (var band in AgeBands)
                if (band.Contains(years)) return band.Name;
        return "age " + Unknown;
    }
}
