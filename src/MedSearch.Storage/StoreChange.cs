using MedSearch.Storage.Records;

namespace MedSearch.Storage;

/// <summary>One write found in the store's log: the record as written, or null where the case was deleted.</summary>
public readonly record struct StoreChange(ulong Id, CaseRecord? Record);
