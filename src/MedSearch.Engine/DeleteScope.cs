namespace MedSearch.Engine;

/// <summary>What a delete request selects: one case, or every case of a series, study or patient.</summary>
public enum DeleteScope
{
    /// <summary>A case id, case key or SOP Instance UID.</summary>
    Case,
    Series,
    Study,
    /// <summary>A Patient ID, hashed with the collection's key before matching.</summary>
    Patient,
    /// <summary>A patient hash as it appears in case metadata (for callers who never had the Patient ID).</summary>
    PatientHash,
}
