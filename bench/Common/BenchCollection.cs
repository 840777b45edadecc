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
    /// their modality and every third labelled "finding". Each case is as large as a DICOM case the index job stores
    /// (see <see cref="Dicomlike"/>). Returns the vectors (the same seed gives the same ones).
    /// </summary>
    public static float[][] Populate(string data, int cases, Random random, string keyPrefix, Func<int, string> modalityOf)
    {
        float[][] vectors;
        using (var stored = Collection.Open(data, new CollectionOptions(), Console.Error.WriteLine))
        {
            vectors = new ClusteredVectors(random, stored.Dimensions).DrawEach(cases);
            if (stored.Count == cases && Holds(stored, keyPrefix, vectors, modalityOf)) return vectors;
        }
        // Another count, or cases from an older recipe of the vectors: stored anew.
        Directory.Delete(data, recursive: true);
        using var collection = Collection.Open(data, new CollectionOptions(), Console.Error.WriteLine);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            var key = KeyOf(keyPrefix, i);
            var record = Dicomlike(i, key, modalityOf(i), collection.ModelId);
            record.Embedding.Add(vectors[i]);
            if (i % 3 == 0) record.Labels.Add("finding");
            collection.Put(record);
            if ((i + 1) % 20_000 == 0) Console.Error.WriteLine($"stored {i + 1:N0} cases, {watch.Elapsed.TotalSeconds:F0} s");
        }
        collection.Checkpoint();
        Console.Error.WriteLine($"stored {cases:N0} cases in {watch.Elapsed.TotalSeconds:F0} s");
        return vectors;
    }

    private static string KeyOf(string keyPrefix, int i) => $"{keyPrefix}{i:D7}.png";

    // The sizes of the DICOM corpus's stored thumbnails (bytes, its 10th to 90th percentile; median 3,333), taken in turn.
    private static readonly int[] ThumbnailBytes = [129, 900, 2_000, 3_333, 4_500, 6_500, 10_357];

    /// <summary>
    /// Case <paramref name="i"/> with the header facts, hashes and thumbnail the index job stores for a DICOM instance
    /// (18-21 metadata entries, ~4 KiB without the embedding, as on the DICOM corpus): a search reads and returns
    /// these, and a case of one metadata entry would measure a lighter service than a hospital runs. The CT (or MR)
    /// cases of each block of 20 consecutive ones are a series, with positions along z as the series pooling sees
    /// them; every other case is a series of its own.
    /// </summary>
    private static CaseRecord Dicomlike(int i, string key, string modality, string modelId)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        bool stack = modality is "CT" or "MR";
        int series = stack ? i / 20 : i, study = series / 3, patient = study / 2;
        string Uid(string root, int n) => string.Create(c, $"1.2.826.0.1.3680043.8.498.{root}.{n * 7919L + 104_729:D20}.{n % 97}");
        var random = new Random(i);
        var record = new CaseRecord
        {
            Id = CaseId.FromKey(key), Key = key, Source = key, ModelId = modelId, Width = 512, Height = 512,
            ContentSha256 = Google.Protobuf.ByteString.CopyFrom(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i))),
            PixelSha256 = Google.Protobuf.ByteString.CopyFrom(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(~i))),
            IndexedUnixMs = 1_790_000_000_000 + i,
        };
        var thumbnail = new byte[ThumbnailBytes[i % ThumbnailBytes.Length]];
        random.NextBytes(thumbnail);
        record.Thumbnail = Google.Protobuf.ByteString.CopyFrom(thumbnail);
        var facts = record.Metadata;
        facts["format"] = "dicom";
        facts["study_instance_uid"] = Uid("1", study);
        // The modality in the UID: a block of consecutive cases holds several modalities, each its own series.
        facts["series_instance_uid"] = Uid("2." + string.Concat(modality.Select(letter => (int)letter)), series);
        facts["sop_instance_uid"] = Uid("3", i);
        facts["sop_class_uid"] = modality switch
        {
            "CT" => "1.2.840.10008.5.1.4.1.1.2", "MR" => "1.2.840.10008.5.1.4.1.1.4", "CR" => "1.2.840.10008.5.1.4.1.1.1",
            "PT" => "1.2.840.10008.5.1.4.1.1.128", _ => "1.2.840.10008.5.1.4.1.1.6.1",
        };
        facts["modality"] = modality;
        facts["body_part"] = (study % 4) switch { 0 => "CHEST", 1 => "ABDOMEN", 2 => "HEAD", _ => "PELVIS" };
        if (modality == "CR") facts["view_position"] = i % 2 == 0 ? "PA" : "AP";
        if (modality is "CR" or "US") facts["laterality"] = i % 2 == 0 ? "L" : "R";
        facts["sex"] = patient % 2 == 0 ? "F" : "M";
        facts["age"] = (patient % 90 + 1).ToString(c);
        facts["patient_hash"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(patient)).AsSpan(0, 16));
        facts["study_date"] = new DateOnly(2010, 1, 1).AddDays(study % 5000).ToString("yyyy-MM-dd", c);
        facts["manufacturer"] = (study % 3) switch { 0 => "SIEMENS", 1 => "GE MEDICAL SYSTEMS", _ => "Philips" };
        facts["rows"] = "512";
        facts["columns"] = "512";
        facts["frames"] = "1";
        facts["transfer_syntax"] = "1.2.840.10008.1.2.4.90";
        facts["instance_number"] = (stack ? i % 20 + 1 : 1).ToString(c);
        if (stack)
        {
            facts["image_position"] = string.Create(c, $"-235.2\\-226.8\\{-128.5 + 2.5 * (i % 20)}");
            facts["image_orientation"] = "1\\0\\0\\0\\1\\0";
        }
        return record;
    }

    private static bool Holds(Collection collection, string keyPrefix, float[][] vectors, Func<int, string> modalityOf)
    {
        int i = vectors.Length - 1;
        var key = KeyOf(keyPrefix, i);
        var expected = Dicomlike(i, key, modalityOf(i), collection.ModelId);
        return collection.TryFindCase(key, out var last)
            && last.Metadata.Equals(expected.Metadata) && last.Thumbnail.Equals(expected.Thumbnail)
            && last.Embedding.Zip(vectors[^1]).All(pair => MathF.Abs(pair.First - pair.Second) < 1e-5f);
    }
}
