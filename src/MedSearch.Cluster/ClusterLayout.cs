using System.Text.Json;
using System.Text.Json.Serialization;
using MedSearch.Dicom;
using MedSearch.Engine;
using MedSearch.Imaging;

namespace MedSearch.Cluster;

/// <summary>What is fixed when a cluster is created: how many shards, and how series and studies are pooled.</summary>
public sealed record ClusterSettings(
    [property: JsonPropertyName("shards")] int Shards,
    [property: JsonPropertyName("volumes")] VolumeOptions Volumes,
    [property: JsonPropertyName("created")] DateTimeOffset Created);

/// <summary>
/// The cluster's storage, a directory every silo reaches (a shared volume): cluster.json, the patient-hash key all
/// shards share (a patient must hash alike in every shard, or exclusions and deletes by patient would miss), the
/// prepared default model, and one data directory per shard. A shard's directory is its single-node collection;
/// whichever silo owns the shard opens it, and a silo that takes a shard over after a failure recovers it from
/// there (the FASTER checkpoint, then the index snapshot or a rebuild).
/// </summary>
public sealed class ClusterLayout
{
    public const string SettingsFileName = "cluster.json";
    public const int MaxShards = 4096;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private ClusterLayout(string root, ClusterSettings settings)
    {
        Root = root;
        Settings = settings;
    }

    public string Root { get; }
    public ClusterSettings Settings { get; }
    public int Shards => Settings.Shards;

    public string ShardPath(int shard) => Path.Combine(Root, "shards", $"shard-{shard:D4}");

    /// <summary>Where the built-in model is prepared once for all silos.</summary>
    public string ModelsPath => Path.Combine(Root, "models");

    /// <summary>
    /// Opens the cluster's storage, creating it with <paramref name="shards"/> shards when it has no cluster.json.
    /// A shard count or pooling given for an existing cluster must match what it was created with: re-sharding
    /// would move every case, and a different pooling would make series vectors incomparable.
    /// </summary>
    /// <exception cref="CollectionException">A mismatch, a bad count, or an unreadable settings file; the message says which.</exception>
    public static ClusterLayout CreateOrOpen(string root, int? shards, VolumeOptions? volumes)
    {
        root = Path.GetFullPath(root);
        var path = Path.Combine(root, SettingsFileName);
        if (File.Exists(path))
        {
            ClusterSettings existing;
            try
            {
                existing = JsonSerializer.Deserialize<ClusterSettings>(File.ReadAllText(path), Json)
                    ?? throw new JsonException("empty");
            }
            catch (JsonException e)
            {
                throw new CollectionException($"cluster storage {root}: {SettingsFileName} is unreadable ({e.Message}); restore it from a backup", e);
            }
            if (shards is { } wanted && wanted != existing.Shards)
                throw new CollectionException($"--shards {wanted}: the cluster at {root} was created with {existing.Shards} shards, which cannot change (every case would move)");
            if (volumes is not null && volumes != existing.Volumes)
                throw new CollectionException($"cluster storage {root} pools series as {existing.Volumes}, not {volumes}; one cluster has one pooling");
            return new ClusterLayout(root, existing);
        }
        int count = shards ?? throw new CollectionException($"cluster storage {root} has no {SettingsFileName}: give --shards N to create the cluster");
        if (count is < 1 or > MaxShards) throw new CollectionException($"--shards must be between 1 and {MaxShards}, got {count}");
        Directory.CreateDirectory(root);
        var settings = new ClusterSettings(count, (volumes ?? new VolumeOptions()).Validated(), DateTimeOffset.UtcNow);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(settings, Json));
        try
        {
            // Without overwrite: of two silos creating the cluster at once, the loser adopts the winner's settings.
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
            return CreateOrOpen(root, shards, volumes);
        }
        PatientHasher.OpenOrCreateKey(root);
        return new ClusterLayout(root, settings);
    }

    /// <summary>
    /// The shard of a file: by Study Instance UID, so that a study never straddles shards (series and study search,
    /// one-per-study and delete-by-study stay shard-local); a DICOM file without a study goes by its series, any
    /// other file by its case key, which <paramref name="key"/> gives only when needed (it reads the header again).
    /// </summary>
    public int ShardOf(ReadOnlyMemory<byte> bytes, string name, Func<string> key)
    {
        if (ImageReader.Detect(bytes.Span) == ImageFormat.Dicom)
        {
            try
            {
                var dataset = DicomFile.Open(bytes, name).Dataset;
                if (dataset.GetString(DicomTag.StudyInstanceUid) is { Length: > 0 } study) return ShardOfRoutingKey("study:" + study);
                if (dataset.GetString(DicomTag.SeriesInstanceUid) is { Length: > 0 } series) return ShardOfRoutingKey("series:" + series);
            }
            catch (DicomException)
            {
                // Unreadable, which the shard will report: the key decides.
            }
        }
        return ShardOfRoutingKey(key());
    }

    /// <summary>A stable hash (SHA-256, as case ids) so that every silo and every restart routes alike.</summary>
    public int ShardOfRoutingKey(string routing) => (int)(CaseId.FromKey(routing) % (ulong)Shards);
}
