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
    private readonly IVectorIndex _index;
    private int _deletedSinceCheckpoint;

    private Collection(DataDirectory directory, CollectionOptions options, ImageEncoder encoder, CaseStore store, IndexSnapshot snapshot, IVectorIndex index)
    {
        _directory = directory;
        _options = options;
        Encoder = encoder;
        _store = store;
        _snapshot = snapshot;
        _index = index;
        ReadOptions = new ImageReadOptions { PatientHasher = new PatientHasher(PatientHasher.OpenOrCreateKey(directory.Path)) };
    }

    public ImageEncoder Encoder { get; }
    public string ModelId => Encoder.Manifest.ModelId;
    public int Dimensions => Encoder.Dimensions;
    public long Count => _store.Count;
    public string DataPath => _directory.Path;
    public int MaxNeighbours => _options.MaxNeighbours;

    /// <summary>Written after every checkpoint: if it exists but the store has no checkpoint, checkpoints were lost.</summary>
    private string CheckpointMarker => Path.Combine(_directory.Path, "CHECKPOINTED");

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
        try
        {
            encoder = options.OpenEncoder(directory.Path);
            if (encoder.FallbackReason is { } why) log($"encoder: {why}");
            CollectionSettings.Reconcile(directory.SettingsFile, encoder, options, log);

            store = CaseStore.Open(directory.StorePath, options.Store);
            var marker = Path.Combine(directory.Path, "CHECKPOINTED");
            if (store.LastCheckpoint is null && File.Exists(marker))
                throw new CollectionException(
                    $"data directory {directory.Path} had store checkpoints (last {File.ReadAllText(marker).Trim()}) but {directory.StorePath} has none now: " +
                    "the store's checkpoints are missing or were deleted. Restore the data directory from a backup; refusing to open it as an empty collection");
            var snapshot = new IndexSnapshot(directory.IndexPath, encoder.Dimensions, options.Hnsw);
            var index = snapshot.LoadOrRebuild(store, encoder.Manifest.ModelId, log);
            return new Collection(directory, options, encoder, store, snapshot, index);
        }
        catch
        {
            store?.Dispose();
            encoder?.Dispose();
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
    public void Put(CaseRecord record)
    {
        if (record.ModelId != ModelId)
            throw new ModelMismatchException($"case {record.Key} was embedded with {record.ModelId}, the collection uses {ModelId}");
        if (record.Embedding.Count != Dimensions)
            throw new ArgumentException($"case {record.Key} has a {record.Embedding.Count}-d embedding, the collection is {Dimensions}-d", nameof(record));
        if (_store.TryGet(record.Id, out var existing) && existing.Key != record.Key)
            throw new CollectionException($"case id {CaseId.Format(record.Id)} of {record.Key} collides with stored {existing.Key}; rename one of them");
        _store.Upsert(record);
        _index.Add(record.Id, record.Embedding.ToArray());
    }

    /// <summary>Replaces a stored case's labels and metadata without touching its embedding.</summary>
    public void Annotate(CaseRecord record)
    {
        _store.Upsert(record);
    }

    public float[] Embed(PixelImage image) => Encoder.Embed(image);

    /// <summary>Every stored case (a full scan of the store: for exports, audits and consistency checks).</summary>
    public IEnumerable<CaseRecord> Cases() => _store.Scan();

    /// <summary>Cases the search index holds; equals <see cref="Count"/> unless a write is in flight.</summary>
    public long IndexedCount => _index.Count;

    /// <summary>How files are read for this collection: the same for indexing and querying, with its patient-hash key.</summary>
    public ImageReadOptions ReadOptions { get; }

    public SearchResult SearchImage(ReadOnlyMemory<byte> bytes, string name, int k)
    {
        ValidateK(k);
        var input = ImageReader.Read(bytes, name, ReadOptions);
        return Search(Encoder.Embed(input.Frames[0].Image), k, excludeId: 0);
    }

    public SearchResult SearchCase(string idOrKey, int k, bool excludeSelf)
    {
        ValidateK(k);
        if (!TryFindCase(idOrKey, out var record))
            throw new CaseNotFoundException($"no stored case has id or key `{idOrKey}`");
        return Search(record.Embedding.ToArray(), k, excludeSelf ? record.Id : 0);
    }

    public SearchResult Search(ReadOnlySpan<float> query, int k, ulong excludeId)
    {
        ValidateK(k);
        if (query.Length != Dimensions)
            throw new ArgumentException($"query embedding has {query.Length} dimensions, the collection has {Dimensions}", nameof(query));
        int want = excludeId != 0 ? k + 1 : k;
        var keys = new ulong[want];
        var similarities = new float[want];
        int found = _index.Search(query, keys, similarities);

        var neighbours = new List<Neighbour>(Math.Min(found, k));
        for (int i = 0; i < found && neighbours.Count < k; i++)
        {
            if (keys[i] == excludeId) continue;
            // A case deleted between the index hit and this read is simply not a neighbour any more.
            if (_store.TryGet(keys[i], out var record))
                neighbours.Add(new Neighbour(neighbours.Count + 1, similarities[i], record));
        }
        var (votes, unlabelled) = NeighbourVote.Tally(neighbours);
        return new SearchResult(neighbours, votes, unlabelled, ModelId);
    }

    /// <summary>
    /// Makes everything stored so far durable (a FASTER checkpoint). With <paramref name="saveIndex"/> it also saves
    /// an index snapshot tagged with that checkpoint, so the next open loads it instead of rebuilding; bulk jobs
    /// skip that on their interval checkpoints because a snapshot costs as much as the index is large.
    /// After deletes, the snapshot is written from a fresh build so removed vectors leave the index file too.
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
            if (!saveIndex && !erase) return;
            if (erase)
            {
                using var fresh = _snapshot.Build(_store, _ => { });
                _snapshot.Save(fresh, token, ModelId);
            }
            else
            {
                _snapshot.Save(_index, token, ModelId);
            }
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
        if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"{scope}: no value given to delete by", nameof(value));
        List<CaseRecord> victims;
        if (scope == DeleteScope.Case)
        {
            victims = TryFindCase(value, out var one) || TryFindCase(CaseId.SopKey(value), out one) ? [one] : [];
        }
        else
        {
            var (field, wanted) = scope switch
            {
                DeleteScope.Series => ("series_instance_uid", value),
                DeleteScope.Study => ("study_instance_uid", value),
                DeleteScope.Patient => ("patient_hash", ReadOptions.PatientHasher!.Hash(value)!),
                _ => ("patient_hash", value),
            };
            // A scan: deletes are rare; a secondary index by UID comes with study-level search.
            victims = _store.Scan().Where(r => r.Metadata.TryGetValue(field, out var v) && v == wanted).ToList();
        }
        foreach (var victim in victims)
        {
            _index.Remove(victim.Id);
            _store.Delete(victim.Id);
        }
        if (victims.Count > 0)
        {
            Interlocked.Exchange(ref _deletedSinceCheckpoint, 1);
            Checkpoint();
        }
        return victims.Select(v => v.Key).ToList();
    }

    private void ValidateK(int k)
    {
        if (k < 1 || k > _options.MaxNeighbours)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be between 1 and {_options.MaxNeighbours}, got {k}");
    }

    public void Dispose()
    {
        _index.Dispose();
        _store.Dispose();
        Encoder.Dispose();
        _directory.Dispose();
    }
}
