namespace MedSearch.Engine;

/// <summary>
/// What a search starts from: the query's embedding and, where known, its patient (keyed hash), study and stored
/// case, which the exclusions compare against. A series or study query searches that level's index with its
/// pooled embedding, and its sampled <see cref="Slices"/> name the best-matching slice of each hit.
/// </summary>
/// <param name="Warnings">What was left out of a series/study query's files, and why.</param>
/// <param name="Image">An image query's pixels as the pipeline prepared them, for showing the caller what was searched.</param>
public sealed record Query(float[] Embedding, string? PatientHash = null, string? StudyInstanceUid = null, ulong CaseId = 0,
    VolumeLevel Level = VolumeLevel.Instance, IReadOnlyList<QuerySlice>? Slices = null, IReadOnlyList<string>? Warnings = null,
    Imaging.PixelImage? Image = null);

/// <summary>A sampled slice of a volume query: its name (file or stored key), slice embedding and 8-bit thumbnail.</summary>
public sealed record QuerySlice(string Name, float[] Embedding, byte[] Thumbnail);

public sealed record SearchOptions
{
    public int K { get; init; } = 10;
    public CaseFilter Filter { get; init; } = CaseFilter.None;
    /// <summary>Leave the stored query case itself out.</summary>
    public bool ExcludeQueryCase { get; init; }
    public bool ExcludeSamePatient { get; init; }
    public bool ExcludeSameStudy { get; init; }
    /// <summary>At most one hit per study, its most similar instance; cases without a study are their own.</summary>
    public bool OnePerStudy { get; init; }
    /// <summary>Cases never returned, whatever the filter: an evaluation's query set, kept out of its reference set.</summary>
    public IReadOnlySet<ulong>? ExcludedCases { get; init; }
    /// <summary>Score every admissible case instead of walking the graph: slow, but what the graph approximates.</summary>
    public bool Exact { get; init; }
    /// <summary>
    /// Hits carry their stored thumbnails, and a volume hit's best slice its thumbnail. Without, an instance hit's
    /// thumbnail is not even read from the store (a few KiB a hit), nor is the best slice's instance.
    /// </summary>
    public bool WithThumbnails { get; init; }
    /// <summary>
    /// When the caller stops waiting (UTC). A cluster gives its shards until shortly before then and answers with
    /// those that replied, flagged partial. A single node, whose search cannot be partial, refuses to start the
    /// index search once it has passed (<see cref="OperationCanceledException"/>); the server also cancels the
    /// call's token at the deadline, which stops query-image decoding and embedding between steps (an ONNX Runtime
    /// run in progress finishes). The server answers such a call DEADLINE_EXCEEDED.
    /// </summary>
    public DateTime Deadline { get; init; } = DateTime.MaxValue;
    /// <summary>
    /// Hands the index the filter as a predicate alone, without the catalog's candidate lists: the path before
    /// those lists existed, which tests and the benchmark compare the candidate path with.
    /// </summary>
    internal bool WithoutCandidates { get; init; }
}

/// <summary>
/// A search's filter and exclusions as one test on catalogued facts: handed to the index so the graph walk (or
/// exact scoring, when few pass) only returns admissible keys, and applied again to each stored record returned.
/// </summary>
internal sealed class Admission(CaseCatalog catalog, CaseFilter filter, ulong excludedCase, string? excludedPatient, string? excludedStudy,
    IReadOnlySet<ulong>? excludedCases) : Index.IKeyFilter
{
    /// <summary>True when nothing but the query case is left out (that one is skipped in the hits instead).</summary>
    public bool AdmitsAll => !filter.HasCatalogConditions && excludedPatient is null && excludedStudy is null && excludedCases is not { Count: > 0 };

    public bool Accepts(ulong key) => key != excludedCase && catalog.TryGet(key, out var entry) && Admits(key, entry);

    public bool Admits(ulong key, CatalogEntry entry) => excludedCases?.Contains(key) != true && Admits(entry);

    private bool Admits(CatalogEntry entry) =>
        filter.Matches(entry)
        && (excludedPatient is null || entry.PatientHash != excludedPatient)
        && (excludedStudy is null || entry.StudyInstanceUid != excludedStudy);

    /// <summary>
    /// This test with the catalog's shortest candidate list for it, when the filter names equality facts: a field's
    /// listed values give the union of their lists, every label it must carry a list of its own. Other fields are
    /// left to <see cref="Accepts"/> rather than intersected: the shortest list already bounds the work, and an
    /// intersection would cost a pass over the longer lists on every search. Without equality facts, this test alone.
    /// </summary>
    public Index.IKeyFilter WithCandidates()
    {
        Posting[]? shortest = null;
        long shortestCount = long.MaxValue;
        void Consider(CatalogFact fact, IReadOnlyList<string> values)
        {
            var postings = new List<Posting>(values.Count);
            long count = 0;
            foreach (var value in values)
            {
                // A value listed twice (or, for a header fact, in another case) is one list.
                if (catalog.PostingOf(fact, value) is not { } posting || postings.Contains(posting)) continue;
                postings.Add(posting);
                count += posting.Count;
            }
            if (count >= shortestCount) return;
            postings.Sort(Posting.LockOrder);
            shortest = [.. postings];
            shortestCount = count;
        }

        if (filter.Modalities.Count > 0) Consider(CatalogFact.Modality, filter.Modalities);
        if (filter.BodyParts.Count > 0) Consider(CatalogFact.BodyPart, filter.BodyParts);
        if (filter.ViewPositions.Count > 0) Consider(CatalogFact.ViewPosition, filter.ViewPositions);
        if (filter.Lateralities.Count > 0) Consider(CatalogFact.Laterality, filter.Lateralities);
        if (filter.Sexes.Count > 0) Consider(CatalogFact.Sex, filter.Sexes);
        if (filter.LabelsAny.Count > 0) Consider(CatalogFact.Label, filter.LabelsAny);
        foreach (var label in filter.LabelsAll) Consider(CatalogFact.Label, [label]);
        return shortest is null ? this : new Candidates(this, shortest);
    }

    /// <summary>An admission whose admissible cases are all in the union of some posting lists (which may overlap).</summary>
    private sealed class Candidates(Admission admission, Posting[] postings) : Index.ICandidateFilter
    {
        public bool Accepts(ulong key) => admission.Accepts(key);

        public int CandidateCount
        {
            get
            {
                long count = 0;
                foreach (var posting in postings) count += posting.Count;
                return (int)Math.Min(count, int.MaxValue);
            }
        }

        public int CopyCandidates(Span<ulong> destination) => Posting.CopyAll(postings, destination);
    }
}
