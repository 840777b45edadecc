using System.Diagnostics;
using System.Text.Json;
using MedSearch.Index;
using MedSearch.Storage;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// The HNSW index is derived data. It is saved next to the store after every store checkpoint, tagged with
/// that checkpoint; on open it is loaded only when the tag matches the checkpoint the store recovered to,
/// otherwise (missing, corrupt, stale, other model) it is rebuilt from the store's records with a log line
/// saying why. A stale index is never served: it would silently miss or resurrect cases.
/// </summary>
internal sealed class IndexSnapshot(string directory, int dimensions, HnswOptions options)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private string IndexFile => Path.Combine(directory, "index.usearch");
    private string TagFile => Path.Combine(directory, "snapshot.json");

    private sealed record Tag(Guid Checkpoint, long Position, long Count, string ModelId, int Dimensions);

    /// <summary>
    /// The saved index, or one rebuilt from the store. <paramref name="visit"/> sees every stored record once,
    /// from the rebuild's own scan when there is one: at a million cases a scan of the store takes a while.
    /// </summary>
    public IVectorIndex LoadOrRebuild(CaseStore store, string modelId, Action<string> log, Action<CaseRecord> visit)
    {
        var reason = TryLoad(store, modelId, out var loaded);
        if (loaded is not null)
        {
            foreach (var record in store.Scan()) visit(record);
            return loaded;
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

    private string TryLoad(CaseStore store, string modelId, out IVectorIndex? index)
    {
        index = null;
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
        var checkpoint = store.LastCheckpoint;
        if (checkpoint is null || checkpoint.Value.Token != tag.Checkpoint)
            return "saved index does not match the store's last checkpoint";
        try
        {
            var loaded = HnswIndex.Load(IndexFile, dimensions, options);
            if (loaded.Count != store.Count || loaded.Count != tag.Count)
            {
                loaded.Dispose();
                return $"saved index holds {loaded.Count} cases, the store {store.Count}";
            }
            index = loaded;
            return "loaded";
        }
        catch (IndexFileException e)
        {
            return $"saved index is unusable: {e.Message}";
        }
    }

    public void Save(IVectorIndex index, CheckpointToken checkpoint, string modelId)
    {
        Directory.CreateDirectory(directory);
        // The tag is removed first and written last: a crash in between leaves no tag, hence a rebuild.
        File.Delete(TagFile);
        index.Save(IndexFile);
        var temp = TagFile + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(new Tag(checkpoint.Token, checkpoint.Position, index.Count, modelId, dimensions), Json));
        File.Move(temp, TagFile, overwrite: true);
    }
}
