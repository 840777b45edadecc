using System.Diagnostics;
using MedSearch.Engine;
using MedSearch.Storage.Records;

namespace MedSearch.Bench;

/// <summary>The 100k-case collection the load and collection benchmarks search: <see cref="ClusteredVectors"/> stored one by one.</summary>
internal static class BenchCollection
{
    /// <summary>
    /// Opens <paramref name="data"/> and, unless it already holds these <paramref name="cases"/> cases, stores them anew through
    /// <see cref="Collection.Put"/> under keys <c>{keyPrefix}{i:D7}.png</c>, with <paramref name="modalityOf"/> as
    /// their modality and every third labelled "finding". Returns the vectors (the same seed gives the same ones).
    /// </summary>
    public static float[][] Populate(string data, int cases, Random random, string keyPrefix, Func<int, string> modalityOf)
    {
        float[][] vectors;
        using (var stored = Collection.Open(data, new CollectionOptions(), Console.Error.WriteLine))
        {
            vectors = new ClusteredVectors(random, stored.Dimensions).DrawEach(cases);
            if (stored.Count == cases && Holds(stored, keyPrefix, vectors)) return vectors;
        }
        // Another count, or cases from an older recipe of the vectors: stored anew.
        Directory.Delete(data, recursive: true);
        using var collection = Collection.Open(data, new CollectionOptions(), Console.Error.WriteLine);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            var key = KeyOf(keyPrefix, i);
            var record = new CaseRecord { Id = CaseId.FromKey(key), Key = key, Source = key, ModelId = collection.ModelId };
            record.Embedding.Add(vectors[i]);
            record.Metadata["modality"] = modalityOf(i);
            if (i % 3 == 0) record.Labels.Add("finding");
            collection.Put(record);
            if ((i + 1) % 20_000 == 0) Console.Error.WriteLine($"stored {i + 1:N0} cases, {watch.Elapsed.TotalSeconds:F0} s");
        }
        collection.Checkpoint();
        Console.Error.WriteLine($"stored {cases:N0} cases in {watch.Elapsed.TotalSeconds:F0} s");
        return vectors;
    }

    private static string KeyOf(string keyPrefix, int i) => $"{keyPrefix}{i:D7}.png";

    private static bool Holds(Collection collection, string keyPrefix, float[][] vectors) =>
        collection.TryFindCase(KeyOf(keyPrefix, vectors.Length - 1), out var last)
        && last.Embedding.Zip(vectors[^1]).All(pair => MathF.Abs(pair.First - pair.Second) < 1e-5f);
}
