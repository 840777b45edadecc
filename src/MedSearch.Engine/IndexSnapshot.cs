using System.Diagnostics;
using System.Text.Json;
using MedSearch.Index;
using MedSearch.Storage;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// The HNSW index is derived data. It is saved next to the store, tagged with the checkpoint it was saved after and
/// the log tail at the moment it was written. On open it is loaded and brought up to date by replaying the store's
/// log from the tag's checkpoint position, in log order, when that gives exactly the store's state: the store
/// recovered to the tagged checkpoint and the index holds nothing written after it, or to a later checkpoint (which
/// then holds every write the index saw), and compaction has not removed the log from that position. Otherwise
/// (missing, corrupt, stale, other model, or a replayed index that does not hold exactly the stored cases) it is
/// rebuilt from the store's records with a log line saying why. A stale index is never served: it would silently
/// miss or resurrect cases.
/// </summary>
internal sealed class IndexSnapshot(string directory, int dimensions, HnswOptions options)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    // Distinct cases applied to the index at once while replaying: AddRange adds in parallel, one Add at a time
    // is ~50x slower, and each distinct case's latest version has to be held until it is applied.
    private const int ReplayChunk = 4096;

    private string IndexFile => Path.Combine(directory, "index.usearch");
    private string TagFile => Path.Combine(directory, "snapshot.json");

    /// <param name="Checkpoint">The store checkpoint taken just before the index was written.</param>
    /// <param name="Position">That checkpoint's log position: replay starts there.</param>
    /// <param name="Sequence">That checkpoint's sequence number (0 in tags written before replay existed).</param>
    /// <param name="Tail">The store's log tail when the index was written: the index reflects no write above it.</param>
    private sealed record Tag(Guid Checkpoint, long Position, long Count, string ModelId, int Dimensions, long Sequence = 0, long Tail = 0);

    /// <summary>
    /// The saved index brought up to date, or one rebuilt from the store (<paramref name="rebuilt"/>). <paramref name="visit"/>
    /// sees every stored record once, from the one scan of the store that open makes: at a million cases a scan takes a while.
    /// </summary>
    public IVectorIndex LoadOrRebuild(CaseStore store, string modelId, Action<string> log, Action<CaseRecord> visit, out bool rebuilt)
    {
        var watch = Stopwatch.StartNew();
        var reason = TryLoad(store, modelId, out var loaded, out long replayed);
        rebuilt = true;
        if (loaded is not null)
        {
            // The replayed index must hold exactly the stored cases; the store's scan checks it on the way.
            long missing = 0;
            foreach (var record in store.Scan())
            {
                visit(record);
                if (!loaded.Contains(record.Id)) missing++;
            }
            if (missing == 0 && loaded.Count == store.Count)
            {
                rebuilt = false;
                if (replayed > 0) log($"index: loaded the saved index and replayed {replayed:N0} store changes after it in {watch.Elapsed.TotalSeconds:F1} s");
                return loaded;
            }
            loaded.Dispose();
            log($"index: rebuilding from {store.Count:N0} stored cases (the saved index after replay holds {loaded.Count:N0} cases and lacks {missing:N0} of the store's)");
            return Build(store, log);
        }

        if (store.Count > 0) log($"index: rebuilding from {store.Count:N0} stored cases ({reason})");
        return Build(store, log, visit);
    }

    /// <summary>A new index holding exactly the store's live records, each also shown to <paramref name="visit"/>.</summary>
    public IVectorIndex Build(CaseStore store, Action<string> log, Action<CaseRecord>? visit = null)
    {
        const int Chunk = 4096;
        var watch = Stopwatch.StartNew();
        var index = HnswIndex.Create(dimensions, options);
        var keys = new ulong[Chunk];
        var vectors = new float[Chunk * dimensions];
        int filled = 0;
        long done = 0;
        // Chunks through AddRange, which adds in parallel: one at a time, a 1M-case rebuild would take ~20 minutes.
        void Flush()
        {
            index.AddRange(keys.AsSpan(0, filled), vectors.AsSpan(0, filled * dimensions));
            done += filled;
            filled = 0;
            if (store.Count > Chunk) log($"index: rebuilt {done:N0}/{store.Count:N0}");
        }
        foreach (var record in store.Scan())
        {
            visit?.Invoke(record);
            keys[filled] = record.Id;
            record.Embedding.CopyTo(vectors, filled * dimensions);
            if (++filled == Chunk) Flush();
        }
        if (filled > 0) Flush();
        if (done > 0) log($"index: rebuilt {done:N0} cases in {watch.Elapsed.TotalSeconds:F1} s");
        return index;
    }

    private string TryLoad(CaseStore store, string modelId, out IVectorIndex? index, out long replayed)
    {
        index = null;
        replayed = 0;
        if (!File.Exists(TagFile) || !File.Exists(IndexFile)) return "no saved index";
        Tag? tag;
        try
        {
            tag = JsonSerializer.Deserialize<Tag>(File.ReadAllText(TagFile), Json);
        }
        catch (JsonException e)
        {
            return $"{TagFile} is unreadable: {e.Message}";
        }
        if (tag is null) return $"{TagFile} is empty";
        if (tag.ModelId != modelId || tag.Dimensions != dimensions) return $"saved index is for model {tag.ModelId}";
        if (store.LastCheckpoint is not { } checkpoint) return "the store has no checkpoint";
        if (checkpoint.Token == tag.Checkpoint)
        {
            // Recovered to the tagged checkpoint: the writes between its position and the index's tail may be lost.
            if (tag.Tail > tag.Position) return "saved index holds writes the store's last checkpoint does not";
        }
        else if (tag.Sequence == 0 || checkpoint.Sequence <= tag.Sequence)
        {
            return "saved index does not match the store's last checkpoint";
        }
        if (tag.Position < store.BeginAddress) return "the store was compacted after the index was saved";

        IVectorIndex? loaded = null;
        try
        {
            loaded = HnswIndex.Load(IndexFile, dimensions, options);
            if (loaded.Count != tag.Count) return $"saved index holds {loaded.Count} cases, its tag says {tag.Count}";
            replayed = Replay(store.ChangesSince(tag.Position), loaded);
            (index, loaded) = (loaded, null);
            return "loaded";
        }
        catch (IndexFileException e)
        {
            return $"saved index is unusable: {e.Message}";
        }
        finally
        {
            loaded?.Dispose();
        }
    }

    /// <summary>Applies <paramref name="changes"/> in order (the last change of a case wins); returns how many there were.</summary>
    private static long Replay(IEnumerable<StoreChange> changes, IVectorIndex index)
    {
        var latest = new Dictionary<ulong, CaseRecord?>(ReplayChunk);
        long count = 0;
        void Apply()
        {
            var live = latest.Where(pair => pair.Value is not null).ToList();
            foreach (var (id, record) in latest)
                if (record is null)
                    index.Remove(id);
            if (live.Count > 0)
            {
                var vectors = new float[live.Count * index.Dimensions];
                for (int i = 0; i < live.Count; i++) live[i].Value!.Embedding.CopyTo(vectors, i * index.Dimensions);
                index.AddRange(live.Select(pair => pair.Key).ToArray(), vectors);
            }
            latest.Clear();
        }
        foreach (var change in changes)
        {
            count++;
            latest[change.Id] = change.Record;
            if (latest.Count == ReplayChunk) Apply();
        }
        Apply();
        return count;
    }

    /// <summary>
    /// Writes <paramref name="index"/>, tagged with <paramref name="checkpoint"/> (taken just before) and the store's
    /// log <paramref name="tail"/> at the moment of writing, when no write was half applied (in the store but not
    /// yet the index).
    /// </summary>
    public void Save(IVectorIndex index, CheckpointToken checkpoint, long tail, string modelId)
    {
        Directory.CreateDirectory(directory);
        // The tag is removed first and written last: a crash in between leaves no tag, hence a rebuild.
        File.Delete(TagFile);
        index.Save(IndexFile);
        var temp = TagFile + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(
            new Tag(checkpoint.Token, checkpoint.Position, index.Count, modelId, dimensions, checkpoint.Sequence, tail), Json));
        File.Move(temp, TagFile, overwrite: true);
    }
}
