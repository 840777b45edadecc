using System.Globalization;
using MedSearch.Imaging;

namespace MedSearch.Engine;

/// <summary>
/// The header facts kept with each case as metadata, under stable lower_snake_case keys that filters and
/// reports use. Patient ID and name never appear: only the keyed patient hash.
/// </summary>
public static class CaseFacts
{
    public static IReadOnlyDictionary<string, string> From(ImageInput input) => From(input.Format, input.Dicom);

    public static IReadOnlyDictionary<string, string> From(ImageFrames file) => From(file.Format, file.Dicom);

    private static IReadOnlyDictionary<string, string> From(ImageFormat format, MedSearch.Dicom.InstanceMetadata? dicom)
    {
        var facts = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = format.ToString().ToLowerInvariant(),
        };
        if (dicom is not { } d) return facts;
        var c = CultureInfo.InvariantCulture;
        void Put(string key, string? value)
        {
            if (!string.IsNullOrWhiteSpace(value)) facts[key] = value.Trim();
        }
        Put("study_instance_uid", d.StudyInstanceUid);
        Put("series_instance_uid", d.SeriesInstanceUid);
        Put("sop_instance_uid", d.SopInstanceUid);
        Put("sop_class_uid", d.SopClassUid);
        Put("modality", d.Modality);
        Put("body_part", d.BodyPartExamined);
        Put("view_position", d.ViewPosition);
        Put("laterality", d.Laterality);
        Put("sex", d.PatientSex);
        Put("age", d.PatientAgeYears?.ToString("0.##", c));
        Put("patient_hash", d.PatientHash);
        Put("study_date", d.StudyDate?.ToString("yyyy-MM-dd", c));
        Put("manufacturer", d.Manufacturer);
        Put("rows", d.Rows?.ToString(c));
        Put("columns", d.Columns?.ToString(c));
        Put("frames", d.NumberOfFrames.ToString(c));
        Put("transfer_syntax", d.TransferSyntaxUid);
        Put("instance_number", d.InstanceNumber?.ToString(c));
        Put("image_position", d.ImagePositionPatient is { Count: 3 } p ? string.Join('\\', p.Select(v => v.ToString("R", c))) : null);
        Put("image_orientation", d.ImageOrientationPatient is { Count: 6 } o ? string.Join('\\', o.Select(v => v.ToString("R", c))) : null);
        return facts;
    }
}
