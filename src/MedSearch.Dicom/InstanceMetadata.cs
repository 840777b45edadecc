using System.Globalization;

namespace MedSearch.Dicom;

/// <summary>
/// What the index keeps about one instance. The patient appears only as <see cref="PatientHash"/>: Patient ID and
/// name are never copied out of the dataset. A malformed optional value reads as absent: metadata describes the
/// image, while <see cref="DicomPixelData"/> is where malformed image geometry is refused.
/// </summary>
public sealed record InstanceMetadata
{
    public string? StudyInstanceUid { get; init; }
    public string? SeriesInstanceUid { get; init; }
    public string? SopInstanceUid { get; init; }
    public string? SopClassUid { get; init; }
    public string? Modality { get; init; }
    public string? BodyPartExamined { get; init; }
    public string? ViewPosition { get; init; }

    /// <summary>(0020,0062) Image Laterality, else (0020,0060) Laterality.</summary>
    public string? Laterality { get; init; }

    public string? PatientSex { get; init; }

    /// <summary>From Patient's Age, else birth date to study (or acquisition) date: whole years from one year on, fractional below.</summary>
    public double? PatientAgeYears { get; init; }

    /// <summary>HMAC of Patient ID under the installation key (<see cref="PatientHasher"/>); null when the ID is absent.</summary>
    public string? PatientHash { get; init; }

    public DateOnly? StudyDate { get; init; }
    public string? Manufacturer { get; init; }
    public int? Rows { get; init; }
    public int? Columns { get; init; }
    public int NumberOfFrames { get; init; } = 1;
    public required string TransferSyntaxUid { get; init; }

    /// <summary>x, y, z of the first voxel, mm; from the top level or, for enhanced multi-frame, the first frame's functional group.</summary>
    public IReadOnlyList<double>? ImagePositionPatient { get; init; }

    /// <summary>Row then column direction cosines (6 values).</summary>
    public IReadOnlyList<double>? ImageOrientationPatient { get; init; }

    public int? InstanceNumber { get; init; }
    public double? SliceLocation { get; init; }

    /// <summary>Row spacing then column spacing, mm.</summary>
    public IReadOnlyList<double>? PixelSpacing { get; init; }

    public static InstanceMetadata From(DicomDataset dataset, PatientHasher hasher)
    {
        var studyDate = Lenient(() => ParseDate(dataset.GetString(DicomTag.StudyDate)));
        return new InstanceMetadata
        {
            StudyInstanceUid = Lenient(() => dataset.GetString(DicomTag.StudyInstanceUid)),
            SeriesInstanceUid = Lenient(() => dataset.GetString(DicomTag.SeriesInstanceUid)),
            SopInstanceUid = Lenient(() => dataset.GetString(DicomTag.SopInstanceUid)),
            SopClassUid = Lenient(() => dataset.GetString(DicomTag.SopClassUid)),
            Modality = Lenient(() => dataset.GetString(DicomTag.Modality)),
            BodyPartExamined = Lenient(() => dataset.GetString(DicomTag.BodyPartExamined)),
            ViewPosition = Lenient(() => dataset.GetString(DicomTag.ViewPosition)),
            Laterality = Lenient(() => dataset.GetString(DicomTag.ImageLaterality) ?? dataset.GetString(DicomTag.Laterality)),
            PatientSex = Lenient(() => dataset.GetString(DicomTag.PatientSex)),
            PatientAgeYears = Lenient(() => AgeYears(dataset, studyDate)),
            PatientHash = Lenient(() => hasher.Hash(dataset.GetString(DicomTag.PatientId))),
            StudyDate = studyDate,
            Manufacturer = Lenient(() => dataset.GetString(DicomTag.Manufacturer)),
            Rows = Lenient(() => dataset.GetInt(DicomTag.Rows)),
            Columns = Lenient(() => dataset.GetInt(DicomTag.Columns)),
            NumberOfFrames = Lenient(() => dataset.GetInt(DicomTag.NumberOfFrames)) is > 0 and var frames ? frames : 1,
            TransferSyntaxUid = dataset.TransferSyntax.Uid,
            ImagePositionPatient = Vector(dataset, DicomTag.ImagePositionPatient, 3, DicomTag.PlanePositionSequence, perFrameFirst: true),
            ImageOrientationPatient = Vector(dataset, DicomTag.ImageOrientationPatient, 6, DicomTag.PlaneOrientationSequence, perFrameFirst: false),
            InstanceNumber = Lenient(() => dataset.GetInt(DicomTag.InstanceNumber)),
            SliceLocation = Lenient(() => dataset.GetDouble(DicomTag.SliceLocation)),
            PixelSpacing = Vector(dataset, DicomTag.PixelSpacing, 2, DicomTag.PixelMeasuresSequence, perFrameFirst: false),
        };
    }

    /// <summary>
    /// A vector attribute from the top level, else from the enhanced multi-frame functional groups (PS3.3 C.7.6.16):
    /// position varies per frame, so the first frame's comes first; orientation and spacing are usually shared.
    /// </summary>
    private static double[]? Vector(DicomDataset dataset, DicomTag tag, int length, DicomTag macro, bool perFrameFirst)
    {
        if (Exact(dataset, tag, length) is { } top) return top;
        var shared = FirstItem(dataset, DicomTag.SharedFunctionalGroupsSequence);
        var perFrame = FirstItem(dataset, DicomTag.PerFrameFunctionalGroupsSequence);
        foreach (var group in perFrameFirst ? new[] { perFrame, shared } : [shared, perFrame])
            if (group is not null && FirstItem(group, macro) is { } item && Exact(item, tag, length) is { } value)
                return value;
        return null;
    }

    private static double[]? Exact(DicomDataset dataset, DicomTag tag, int length) =>
        Lenient(() => dataset.GetDoubles(tag)) is { } values && values.Length == length ? values : null;

    private static DicomDataset? FirstItem(DicomDataset dataset, DicomTag sequence) =>
        Lenient(() => dataset.GetSequence(sequence)) is { Count: > 0 } items ? items[0] : null;

    private static double? AgeYears(DicomDataset dataset, DateOnly? studyDate)
    {
        if (ParseAge(dataset.GetString(DicomTag.PatientAge)) is { } stated) return stated;
        var birth = ParseDate(dataset.GetString(DicomTag.PatientBirthDate));
        var reference = studyDate ?? ParseDate(dataset.GetString(DicomTag.AcquisitionDate))
            ?? ParseDate(dataset.GetString(DicomTag.SeriesDate)) ?? ParseDate(dataset.GetString(DicomTag.ContentDate));
        if (birth is not { } born || reference is not { } on || on < born) return null;
        int years = on.Year - born.Year - (on.Month < born.Month || on.Month == born.Month && on.Day < born.Day ? 1 : 0);
        // Whole years match how Patient's Age is stated; below a year the days matter clinically.
        return years >= 1 ? years : (on.DayNumber - born.DayNumber) / DaysPerYear;
    }

    private const double DaysPerYear = 365.25;

    /// <summary>AS (PS3.5 6.2): "nnnD", "nnnW", "nnnM" or "nnnY"; writers that drop leading zeros are accepted.</summary>
    internal static double? ParseAge(string? text)
    {
        if (text is null || text.Length < 2) return null;
        if (!int.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out int count)) return null;
        return char.ToUpperInvariant(text[^1]) switch
        {
            'D' => count / DaysPerYear,
            'W' => count * 7 / DaysPerYear,
            'M' => count / 12.0,
            'Y' => count,
            _ => null,
        };
    }

    /// <summary>DA "YYYYMMDD", or the ACR-NEMA "YYYY.MM.DD" older files still carry.</summary>
    internal static DateOnly? ParseDate(string? text) =>
        DateOnly.TryParseExact(text, ["yyyyMMdd", "yyyy.MM.dd"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
            ? date
            : null;

    private static T? Lenient<T>(Func<T?> read)
    {
        try
        {
            return read();
        }
        catch (DicomException)
        {
            return default;
        }
    }
}
