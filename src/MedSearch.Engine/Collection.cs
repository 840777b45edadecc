using System.Diagnostics.CodeAnalysis;
using MedSearch.Dicom;
using MedSearch.Embedding;
using MedSearch.Imaging;
using MedSearch.Index;
using MedSearch.Storage;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// One searchable collection of cases in one data directory: the encoder that embeds them, the FASTER store
/// that is the record of truth, and the HNSW index derived from it. Thread-safe: searches run concurrently;
/// writes go to the store (session per thread) and then the index (writers serialised inside it).
/// </summary>
public sealed class Collection : IDisposable
{
    private readonly DataDirectory _directory;
    private readonly CaseStore _store;
    private readonly IndexSnapshot _snapshot;
    private readonly CollectionOptions _options;
    private readonly Lock _checkpointLock = new();
    // Writers hold it shared across their store write and index change; saving the index holds it exclusively, so a
    // saved index never has a write half applied (in the store, not yet in the index) that replay would not redo.
    private readonly ReaderWriterLockSlim _writes = new(LockRecursionPolicy.NoRecursion);
    private long _lastIndexSaveTicks = Environment.TickCount64;
    private readonly IVectorIndex _index;
    private readonly CaseCatalog _catalog;
    private readonly VolumeCatalog _volumes;
    private int _deletedSinceCheckpoint;

    private Collection(DataDirectory directory, CollectionOptions options, ImageEncoder encoder, CaseStore store, IndexSnapshot snapshot,
        IVectorIndex index, CaseCatalog catalog, VolumeCatalog volumes, OperatingPoints operatingPoints)
    {
        _volumes = volumes;
        _directory = directory;
        _options = options;
        _store = store;
        _snapshot = snapshot;
        _index = index;
        _catalog = catalog;
        OperatingPoints = operatingPoints;
        var readOptions = new ImageReadOptions { PatientHasher = new PatientHasher(PatientHasher.OpenOrCreateKey(options.PatientKeyDirectory ?? directory.Path)) };
        Queries = new QueryReader(encoder, readOptions, volumes.Options);
    }

    /// <summary>Makes queries from files and embeddings as this collection's cases were made.</summary>
    public QueryReader Queries { get; }

    public ImageEncoder Encoder => Queries.Encoder;
    public string ModelId => Queries.ModelId;
    public int Dimensions => Encoder.Dimensions;
    public long Count => _store.Count;
    public string DataPath => _directory.Path;
    public int MaxNeighbours => _options.MaxNeighbours;

    /// <summary>Each label's decision threshold for <see cref="Classify"/>, read on open.</summary>
    public OperatingPoints OperatingPoints { get; }

    /// <summary>Written after every checkpoint: if it exists but the store has no checkpoint, checkpoints were lost.</summary>
    private string CheckpointMarker => CheckpointMarkerOf(_directory.Path);

    private static string CheckpointMarkerOf(string dataPath) => Path.Combine(dataPath, "CHECKPOINTED");

    /// <summary>
    /// Opens (or creates) the collection: locks the directory, prepares the encoder, recovers the store from its
    /// last checkpoint, then loads the index snapshot that matches that checkpoint or rebuilds it from the store.
    /// </summary>
    public static Collection Open(string dataPath, CollectionOptions options, Action<string>? log = null)
    {
        log ??= _ => { };
        var directory = DataDirectory.Open(dataPath);
        ImageEncoder? encoder = null;
        CaseStore? store = null;
        Collection? collection = null;
        try
        {
            encoder = options.SharedEncoder ?? options.OpenEncoder(directory.Path);
            if (encoder.FallbackReason is { } why) log($"encoder: {why}");
            var volumeOptions = CollectionSettings.Reconcile(directory.SettingsFile, encoder, options, log);

            store = CaseStore.Open(directory.StorePath, options.Store);
            var marker = CheckpointMarkerOf(directory.Path);
            if (store.LastCheckpoint is null && File.Exists(marker))
                throw new CollectionException(
                    $"data directory {directory.Path} had store checkpoints (last {File.ReadAllText(marker).Trim()}) but {directory.StorePath} has none now: " +
                    "the store's checkpoints are missing or were deleted. Restore the data directory from a backup; refusing to open it as an empty collection");
            var operatingPoints = OperatingPoints.Load(directory.Path);
            var snapshot = new IndexSnapshot(directory.IndexPath, encoder.Dimensions, options.Hnsw);
            var catalog = new CaseCatalog();
            var opened = store;
            var volumes = new VolumeCatalog(volumeOptions, encoder.Dimensions, options.Hnsw, encoder.Manifest.ModelId,
                id => opened.TryGet(id, out var record) ? record : null);
            var index = snapshot.LoadOrRebuild(store, encoder.Manifest.ModelId, log, record =>
            {
                catalog.Set(record);
                volumes.Observe(record);
            }, out bool rebuilt);
            collection = new Collection(directory, options, encoder, store, snapshot, index, catalog, volumes, operatingPoints);
            // Saved at once: commands that never save it themselves (eval, export) would otherwise rebuild it on every run.
            // Not at the cost of the open: on a full or read-only disk an export or delete is what frees it.
            if (rebuilt && store.Count > 0)
            {
                try
                {
                    collection.Checkpoint(saveIndex: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or StoreException)
                {
                    log($"index: the rebuilt index could not be saved ({e.Message}); the next open rebuilds it again");
                }
            }
            return collection;
        }
        catch
        {
            if (collection is not null)
            {
                collection.Dispose();
                throw;
            }
            store?.Dispose();
            if (options.SharedEncoder is null) encoder?.Dispose();
            directory.Dispose();
            throw;
        }
    }

    /// <summary>Finds a stored case by its 16-hex-digit id or its key.</summary>
    public bool TryFindCase(string idOrKey, [NotNullWhen(true)] out CaseRecord? record)
    {
        ulong id = CaseId.TryParse(idOrKey, out var parsed) ? parsed : CaseId.FromKey(idOrKey);
        return _store.TryGet(id, out record) && (parsed != 0 || record.Key == idOrKey);
    }

    public bool TryGetCase(ulong id, [NotNullWhen(true)] out CaseRecord? record) => _store.TryGet(id, out record);

    /// <summary>
    /// Stores or replaces a case and makes it searchable. The store is written first: the index is derived
    /// data and is rebuilt from the store after a crash, never the other way round.
    /// </summary>
    public void Put(CaseRecord record) => Put(record, _store.TryGet(record.Id, out var existing) ? existing : null);

    /// <summary><see cref="Put(CaseRecord)"/> for a caller that has just read the stored case of the same id (or found none).</summary>
    internal void Put(CaseRecord record, CaseRecord? existing)
    {
        if (record.ModelId != ModelId) throw ModelMismatch(record);
        if (record.Embedding.Count != Dimensions)
            throw new ArgumentException($"case {record.Key} has a {record.Embedding.Count}-d embedding, the collection is {Dimensions}-d", nameof(record));
        if (existing is not null && existing.Key != record.Key)
            throw new CollectionException($"case id {CaseId.Format(record.Id)} of {record.Key} collides with stored {existing.Key}; rename one of them");
        _writes.EnterReadLock();
        try
        {
            _store.Upsert(record);
            _catalog.Set(record);
            _index.Add(record.Id, record.Embedding.ToArray());
            _volumes.Observe(record);
        }
        finally
        {
            _writes.ExitReadLock();
        }
    }

    /// <summary>Replaces a stored case's labels and metadata without touching its embedding.</summary>
    public void Annotate(CaseRecord record)
    {
        if (!_store.TryGet(record.Id, out var stored) || stored.Key != record.Key)
            throw new CaseNotFoundException($"no stored case has key `{record.Key}` to annotate");
        if (!stored.Embedding.SequenceEqual(record.Embedding))
            throw new ArgumentException($"case {record.Key}: annotating must not change the embedding; store it with {nameof(Put)}", nameof(record));
        _store.Upsert(record);
        _catalog.Set(record);
        _volumes.Observe(record);
    }

    /// <summary>
    /// Replaces (<paramref name="replace"/>) or adds and removes a stored case's labels, durably: a checkpoint
    /// covers the change before this returns. Returns the updated record.
    /// </summary>
    public CaseRecord UpdateLabels(string idOrKey, bool replace, IReadOnlyCollection<string> add, IReadOnlyCollection<string> remove)
    {
        if (CaseAnnotation.LabelChangeProblem(replace, add, remove) is { } problem)
            throw new ArgumentException(problem);
        var record = FindCase(idOrKey).Clone();
        var labels = replace ? [] : record.Labels.ToList();
        labels.RemoveAll(remove.Contains);
        foreach (var label in add)
            if (!labels.Contains(label)) labels.Add(label);
        record.Labels.Clear();
        record.Labels.Add(labels);
        Annotate(record);
        Checkpoint(saveIndex: false);
        return record;
    }

    /// <summary>By id or key, then as a SOP Instance UID.</summary>
    private bool TryFindAny(string idKeyOrUid, [NotNullWhen(true)] out CaseRecord? record) =>
        TryFindCase(idKeyOrUid, out record) || TryFindCase(CaseId.SopKey(idKeyOrUid), out record);

    private ModelMismatchException ModelMismatch(CaseRecord record) =>
        new($"case {record.Key} was embedded with {record.ModelId}, the collection uses {ModelId}");

    /// <summary>A stored case by its 16-hex-digit id, its key or its SOP Instance UID.</summary>
    /// <exception cref="CaseNotFoundException">No such case.</exception>
    public CaseRecord FindCase(string idOrKey)
    {
        var text = idOrKey.Trim();
        if (text.Length > 0 && TryFindAny(text, out var record)) return record;
        throw new CaseNotFoundException($"no stored case has id, key or SOP Instance UID `{idOrKey}`");
    }

    public float[] Embed(PixelImage image) => Encoder.Embed(image);

    /// <summary>Every stored case (a full scan of the store: for exports, audits and consistency checks).</summary>
    public IEnumerable<CaseRecord> Cases() => _store.Scan();

    /// <summary>Cases the search index holds; equals <see cref="Count"/> unless a write is in flight.</summary>
    public long IndexedCount => _index.Count;

    /// <summary>How files are read for this collection: the same for indexing and querying, with its patient-hash key.</summary>
    public ImageReadOptions ReadOptions => Queries.ReadOptions;

    /// <summary>A stored case as the query.</summary>
    /// <exception cref="CaseNotFoundException">No such case.</exception>
    public Query CaseQuery(string idOrKey)
    {
        var record = FindCase(idOrKey);
        if (record.ModelId != ModelId) throw ModelMismatch(record);
        return new Query(record.Embedding.ToArray(), record.Metadata.GetValueOrDefault("patient_hash"),
            record.Metadata.GetValueOrDefault("study_instance_uid"), record.Id);
    }

    /// <summary>
    /// A stored series or study as the query, by its Series or Study Instance UID (or its key, <c>series:UID</c> /
    /// <c>study:UID</c>): its pooled embedding, and its sampled slices for naming the best-matching slices.
    /// </summary>
    /// <exception cref="CaseNotFoundException">No such series or study among the stored instances.</exception>
    public Query VolumeQuery(VolumeLevel level, string uidOrKey)
    {
        var prefix = level == VolumeLevel.Series ? VolumeCatalog.SeriesPrefix : VolumeCatalog.StudyPrefix;
        var text = uidOrKey.Trim();
        var key = text.StartsWith(prefix, StringComparison.Ordinal) ? text : prefix + text;
        if (!_volumes.TryGet(level, CaseId.FromKey(key), out var volume) || volume.Record.Key != key)
            throw new CaseNotFoundException($"no stored {level.Name()} has UID `{uidOrKey}`");
        var slices = volume.Slices.Select(s => new QuerySlice(s.Key, s.Embedding,
            _store.TryGet(s.InstanceId, out var instance) ? instance.Thumbnail.ToByteArray() : [])).ToList();
        var record = volume.Record;
        return new Query(record.Embedding.ToArray(), record.Metadata.GetValueOrDefault("patient_hash"),
            record.Metadata.GetValueOrDefault("study_instance_uid"), record.Id, level, slices);
    }

    /// <summary>Every series or study as a case (pooled from the stored instances now), or every stored instance.</summary>
    public IEnumerable<CaseRecord> Cases(VolumeLevel level) =>
        level == VolumeLevel.Instance ? _store.Scan() : _volumes.All(level).Select(v => v.Record);

    /// <summary>What was left out of a series or study and why (odd image size, repeated position, missing positions).</summary>
    public IReadOnlyList<string> VolumeProblems(VolumeLevel level, string uid) =>
        level == VolumeLevel.Series ? _volumes.ProblemsOf(uid)
        : _volumes.TryGet(level, CaseId.FromKey(VolumeCatalog.StudyPrefix + uid), out var volume) ? volume.Problems : [];

    /// <summary>How series and studies are pooled.</summary>
    public VolumeOptions Volumes => Queries.Volumes;

    /// <summary>
    /// The <see cref="SearchOptions.K"/> stored cases most similar to <paramref name="query"/> that pass the filter
    /// and exclusions, most similar first, with the neighbour vote. Filters run inside the index search; each hit
    /// is then checked again on its stored record, so a hit never violates one. Conditions the catalog cannot
    /// answer (free metadata keys) and one-per-study grouping are applied to a longer candidate list, lengthened
    /// until k hits pass or the index is exhausted.
    /// </summary>
    /// <exception cref="ArgumentException">An exclusion the query cannot support (no patient or study), or a bad k.</exception>
    /// <remarks>Waits for hits read from disk on this thread: for batch jobs. A server awaits <see cref="SearchAsync"/>.</remarks>
    public SearchResult Search(Query query, SearchOptions options) => Search(query, options, wait: true).GetAwaiter().GetResult();

    /// <summary><see cref="Search(Query, SearchOptions)"/> awaiting the hits that have to be read from disk.</summary>
    public ValueTask<SearchResult> SearchAsync(Query query, SearchOptions options) => Search(query, options, wait: false);

    private async ValueTask<SearchResult> Search(Query query, SearchOptions options, bool wait)
    {
        int k = options.K;
        ValidateK(k);
        var (index, catalog) = query.Level == VolumeLevel.Instance ? (_index, _catalog) : _volumes.Searchable(query.Level);
        if (query.Embedding.Length != index.Dimensions)
            throw new ArgumentException($"query embedding has {query.Embedding.Length} dimensions, the collection's {query.Level.Name()} vectors {index.Dimensions}", nameof(query));
        if (options.ExcludeSamePatient && query.PatientHash is null)
            throw new ArgumentException("exclude_same_patient: the query has no patient (only DICOM images and stored DICOM cases have one)", nameof(options));
        if (options.ExcludeSameStudy && query.StudyInstanceUid is null)
            throw new ArgumentException("exclude_same_study: the query has no study (only DICOM images and stored DICOM cases have one)", nameof(options));

        ulong excluded = options.ExcludeQueryCase ? query.CaseId : 0;
        var admission = new Admission(catalog, options.Filter, excluded,
            options.ExcludeSamePatient ? query.PatientHash : null, options.ExcludeSameStudy ? query.StudyInstanceUid : null, options.ExcludedCases);
        IKeyFilter? filter = admission.AdmitsAll ? null : options.WithoutCandidates ? admission : admission.WithCandidates();
        bool lengthen = options.Filter.Metadata.Count > 0 || options.OnePerStudy;
        long limit = Math.Max(k, Math.Min(index.Count, MaxCandidates));
        int fetch = (int)Math.Min(limit, lengthen ? k * 4L : k + (excluded != 0 ? 1 : 0));

        List<Neighbour> neighbours;
        while (true)
        {
            var keys = new ulong[fetch];
            var similarities = new float[fetch];
            // Series and studies are few (a series holds tens to hundreds of instances) and their pooled vectors crowd
            // together, where the graph's recall drops (0.7 at k=10 on AdrenalMNIST3D): below ExactVolumeLimit they
            // are scored exactly, which costs well under a millisecond per thousand.
            bool exact = options.Exact || (query.Level != VolumeLevel.Instance && index.Count <= ExactVolumeLimit);
            int found = exact
                ? index.SearchExact(query.Embedding, keys, similarities, filter)
                : index.Search(query.Embedding, keys, similarities, filter);
            neighbours = new List<Neighbour>(k);
            var studies = options.OnePerStudy ? new HashSet<string>(StringComparer.Ordinal) : null;
            var hits = query.Level == VolumeLevel.Instance ? new CaseRecord?[found] : null;
            int read = 0;
            for (int i = 0; i < found && neighbours.Count < k; i++)
            {
                if (keys[i] == excluded) continue;
                if (hits is not null && i >= read)
                {
                    // The candidates that could still all be neighbours, read from the store together; twice as many where
                    // metadata conditions or grouping will turn some away.
                    int remaining = k - neighbours.Count + (excluded != 0 ? 1 : 0);
                    int count = Math.Min(found - i, lengthen ? 2 * remaining : remaining);
                    if (wait) _store.ReadHits(keys, i, count, options.WithThumbnails, hits);
                    else await _store.ReadHitsAsync(keys, i, count, options.WithThumbnails, hits);
                    read = i + count;
                }
                Volume? volume = null;
                var record = hits is not null ? hits[i] : _volumes.TryGet(query.Level, keys[i], out volume) ? volume.Record : null;
                // A case deleted between the index hit and this read is simply not a neighbour any more.
                if (record is null) continue;
                // Held to the stored record, not the catalog: the two may differ while a write is in flight.
                if (filter is not null && !admission.Admits(record.Id, CatalogEntry.From(record))) continue;
                if (!options.Filter.MatchesMetadata(record)) continue;
                if (studies is not null && record.Metadata.TryGetValue("study_instance_uid", out var study) && !studies.Add(study)) continue;
                neighbours.Add(new Neighbour(neighbours.Count + 1, similarities[i], record,
                    volume is not null && query.Slices is { Count: > 0 } slices ? BestSlices(slices, volume, options.WithThumbnails) : null));
            }
            if (neighbours.Count >= k || found < fetch || fetch >= limit) break;
            fetch = (int)Math.Min(limit, fetch * 4L);
        }
        var (votes, unlabelled) = NeighbourVote.Tally(neighbours);
        return new SearchResult(neighbours, votes, unlabelled, ModelId);
    }

    /// <summary>The query slice and hit slice most alike; the hit slice's thumbnail read from its stored instance when asked for.</summary>
    private SlicePair BestSlices(IReadOnlyList<QuerySlice> query, Volume hit, bool withThumbnail)
    {
        // At most MaxPairedSlices a side (evenly spread), so a study of many series costs k × 32² cosines, not k × 320².
        (int Query, int Hit, float Similarity) best = (0, 0, float.NegativeInfinity);
        foreach (int q in VolumePooling.Sample(query.Count, MaxPairedSlices))
        foreach (int h in VolumePooling.Sample(hit.Slices.Count, MaxPairedSlices))
        {
            float similarity = System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(query[q].Embedding, hit.Slices[h].Embedding);
            if (similarity > best.Similarity) best = (q, h, similarity);
        }
        var slice = hit.Slices[best.Hit];
        var thumbnail = withThumbnail && _store.TryGet(slice.InstanceId, out var instance) ? instance.Thumbnail.ToByteArray() : [];
        return new SlicePair(query[best.Query].Name, query[best.Query].Thumbnail, slice.Key, thumbnail, best.Similarity);
    }

    /// <summary>k-NN classification of <paramref name="query"/>: the search, then a weighted vote per label decided at its operating point.</summary>
    public Classification Classify(Query query, SearchOptions options, Weighting weighting, double temperature) =>
        Classification.Decide(Search(query, options), query.Level, OperatingPoints, weighting, temperature);

    /// <summary>Counts of the stored cases by modality and label, the index settings and the sizes on disk, for Stats.</summary>
    public CollectionStats Stats()
    {
        var byModality = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long cases = 0, unlabelled = 0;
        foreach (var (_, entry) in _catalog.Entries)
        {
            cases++;
            var modality = entry.Modality ?? CollectionStats.Unknown;
            byModality[modality] = byModality.GetValueOrDefault(modality) + 1;
            if (entry.Labels.Length == 0) unlabelled++;
        }
        return new CollectionStats(cases, byModality, LabelCounts(), unlabelled, _options.Hnsw, _index.Count, _index.MemoryUsage,
            DirectoryBytes(_directory.StorePath), DirectoryBytes(_directory.IndexPath), _volumes.Count(VolumeLevel.Series), _volumes.Count(VolumeLevel.Study),
            _volumes.Options);
    }

    /// <summary>Every label in use and how many cases carry it, in label order.</summary>
    public IReadOnlyDictionary<string, long> LabelCounts()
    {
        var byLabel = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (_, entry) in _catalog.Entries)
            foreach (var label in entry.Labels.Distinct(StringComparer.Ordinal))
                byLabel[label] = byLabel.GetValueOrDefault(label) + 1;
        return byLabel;
    }

    private static long DirectoryBytes(string path) =>
        Directory.Exists(path) ? new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : 0;

    /// <summary>
    /// Makes everything stored so far durable (a FASTER checkpoint). With <paramref name="saveIndex"/>, or when the
    /// last index save is older than <see cref="CollectionOptions.IndexSaveInterval"/>, it also saves the index
    /// tagged with that checkpoint, so the next open loads it and replays only the store's later changes instead of
    /// rebuilding; bulk jobs pass false on their interval checkpoints because a save costs as much as the index is
    /// large and holds writers back meanwhile. After deletes, the index file is written from a fresh build so
    /// removed vectors leave it too.
    /// </summary>
    /// <remarks>A case is acknowledged as stored only once a checkpoint taken after its write has returned.</remarks>
    public void Checkpoint(bool saveIndex = true)
    {
        lock (_checkpointLock)
        {
            bool erase = Interlocked.Exchange(ref _deletedSinceCheckpoint, 0) == 1;
            // Compaction checkpoints too, once the deleted records' bytes have left the log files.
            var token = erase ? _store.Compact() : _store.Checkpoint();
            File.WriteAllText(CheckpointMarker, token.Token.ToString());
            bool due = Environment.TickCount64 - Volatile.Read(ref _lastIndexSaveTicks) >= _options.IndexSaveInterval.TotalMilliseconds;
            if (!saveIndex && !erase && !due) return;
            if (erase)
            {
                // Built from the store, which is the truth: a write racing the build is in it or after the checkpoint
                // position, where replay redoes it. The tail read after the build bounds what the build can hold.
                using var fresh = _snapshot.Build(_store, _ => { });
                _snapshot.Save(fresh, token, _store.TailAddress, ModelId);
            }
            else
            {
                _writes.EnterWriteLock();
                try
                {
                    _snapshot.Save(_index, token, _store.TailAddress, ModelId);
                }
                finally
                {
                    _writes.ExitWriteLock();
                }
            }
            Volatile.Write(ref _lastIndexSaveTicks, Environment.TickCount64);
        }
    }

    /// <summary>
    /// Deletes every case in <paramref name="scope"/> matching <paramref name="value"/>: out of search at once,
    /// then a checkpoint with log compaction and a fresh index file, so that when this returns the cases are gone
    /// from the files too (a patient's withdrawal of consent must not linger on disk).
    /// </summary>
    /// <param name="value">A case id or key or SOP Instance UID; a Series or Study Instance UID; a Patient ID (hashed
    /// with the collection's key, never stored); or a patient hash as stored in metadata.</param>
    public IReadOnlyList<string> Delete(DeleteScope scope, string value)
    {
        // The message names no field: the caller's name for the value (a request field, a command line option) goes in front.
        if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException("empty, so nothing to delete by", nameof(value));
        List<CaseRecord> victims;
        if (scope == DeleteScope.Case)
        {
            victims = TryFindAny(value, out var one) ? [one] : [];
        }
        else
        {
            var (fact, wanted) = scope switch
            {
                DeleteScope.Series => ((Func<CatalogEntry, string?>)(e => e.SeriesInstanceUid), value),
                DeleteScope.Study => (e => e.StudyInstanceUid, value),
                DeleteScope.Patient => (e => e.PatientHash, ReadOptions.PatientHasher!.Hash(value)!),
                _ => (e => e.PatientHash, value),
            };
            victims = [];
            foreach (var (id, entry) in _catalog.Entries)
                if (fact(entry) == wanted && _store.TryGet(id, out var record))
                    victims.Add(record);
        }
        _writes.EnterReadLock();
        try
        {
            foreach (var victim in victims)
            {
                _index.Remove(victim.Id);
                _catalog.Remove(victim.Id);
                _volumes.Forget(victim.Id);
                _store.Delete(victim.Id);
            }
        }
        finally
        {
            _writes.ExitReadLock();
        }
        if (victims.Count > 0)
        {
            Interlocked.Exchange(ref _deletedSinceCheckpoint, 1);
            Checkpoint();
        }
        return victims.Select(v => v.Key).ToList();
    }

    private const int MaxPairedSlices = 32;

    /// <summary>Series or studies up to which a volume search scores every one instead of walking the graph.</summary>
    public const int ExactVolumeLimit = 50_000;

    // Longest candidate list a filtered or grouped search asks the index for before it settles for fewer than k hits.
    private const int MaxCandidates = 65_536;

    private void ValidateK(int k)
    {
        if (k < 1 || k > _options.MaxNeighbours)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be between 1 and {_options.MaxNeighbours}, got {k}");
    }

    public void Dispose()
    {
        _volumes.Dispose();
        _index.Dispose();
        _store.Dispose();
        _writes.Dispose();
        if (_options.SharedEncoder is null) Encoder.Dispose();
        _directory.Dispose();
    }
}
