using MedSearch.Engine;

namespace MedSearch.Cluster;

/// <summary>
/// One shard of the case space: a single-node collection on the silo that owns it (see <see cref="ShardPlacementAttribute"/>),
/// keyed by shard number. Refusals a single node would raise as exceptions (a bad exclusion, an unknown case) come
/// back as <see cref="ShardRefusal"/> values, so the gateway can raise the same error the single node would.
/// </summary>
[Alias("medsearch.v1.shard")]
public interface IShardGrain : IGrainWithIntegerKey
{
    [Alias("search")] Task<ShardHits> SearchAsync(ShardSearch search);
    [Alias("ingest")] Task<ShardIngestResult[]> IngestAsync(ShardIngestItem[] items);
    [Alias("delete")] Task<string[]> DeleteAsync(DeleteScope scope, string value);
    [Alias("find")] Task<byte[]?> FindAsync(string idOrKey);
    [Alias("stored-query")] Task<ShardQuery?> StoredQueryAsync(VolumeLevel level, string idOrUid);
    [Alias("update-labels")] Task<ShardUpdate> UpdateLabelsAsync(string idOrKey, bool replace, string[] add, string[] remove);
    [Alias("stats")] Task<ShardStats> StatsAsync();
    [Alias("checkpoint")] Task CheckpointAsync();
}

/// <summary>Why a shard refused a call, as the single node's exception type would say it.</summary>
[GenerateSerializer, Alias("medsearch.v1.shard-refusal")]
public sealed record ShardRefusal([property: Id(0)] ShardRefusalKind Kind, [property: Id(1)] string Message)
{
    public static ShardRefusal? Of(Exception e) => e switch
    {
        CaseNotFoundException => new(ShardRefusalKind.NotFound, e.Message),
        ModelMismatchException => new(ShardRefusalKind.ModelMismatch, e.Message),
        // Without the " (Parameter 'x')" suffix: the gateway raises it again, and the messages name their field already.
        ArgumentException a => new(ShardRefusalKind.Argument, a.ParamName is { } name ? a.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : a.Message),
        _ => null,
    };

    public Exception ToException() => Kind switch
    {
        ShardRefusalKind.NotFound => new CaseNotFoundException(Message),
        ShardRefusalKind.ModelMismatch => new ModelMismatchException(Message),
        _ => new ArgumentException(Message),
    };
}

[GenerateSerializer]
public enum ShardRefusalKind { Argument, NotFound, ModelMismatch }

/// <summary>A <see cref="Query"/> on the wire: the embedding and what exclusions compare, without the query's pixels.</summary>
[GenerateSerializer, Alias("medsearch.v1.shard-query")]
public sealed record ShardQuery(
    [property: Id(0)] float[] Embedding,
    [property: Id(1)] string? PatientHash,
    [property: Id(2)] string? StudyInstanceUid,
    [property: Id(3)] ulong CaseId,
    [property: Id(4)] int Level,
    [property: Id(5)] ShardSlice[] Slices)
{
    public static ShardQuery Of(Query query) => new(query.Embedding, query.PatientHash, query.StudyInstanceUid, query.CaseId, (int)query.Level,
        query.Slices?.Select(s => new ShardSlice(s.Name, s.Embedding, s.Thumbnail)).ToArray() ?? []);

    public Query ToQuery() => new(Embedding, PatientHash, StudyInstanceUid, CaseId, (VolumeLevel)Level,
        Slices.Length == 0 ? null : Slices.Select(s => new QuerySlice(s.Name, s.Embedding, s.Thumbnail)).ToList());
}

[GenerateSerializer, Alias("medsearch.v1.shard-slice")]
public sealed record ShardSlice([property: Id(0)] string Name, [property: Id(1)] float[] Embedding, [property: Id(2)] byte[] Thumbnail);

/// <summary>A search as each shard runs it; the filter travels as JSON (see <see cref="ClusterHosting"/>).</summary>
[GenerateSerializer, Alias("medsearch.v1.shard-search")]
public sealed record ShardSearch(
    [property: Id(0)] ShardQuery Query,
    [property: Id(1)] int K,
    [property: Id(2)] CaseFilter Filter,
    [property: Id(3)] bool ExcludeQueryCase,
    [property: Id(4)] bool ExcludeSamePatient,
    [property: Id(5)] bool ExcludeSameStudy,
    [property: Id(6)] bool OnePerStudy,
    [property: Id(7)] bool Exact,
    [property: Id(8)] bool WithThumbnails)
{
    public static ShardSearch Of(Query query, SearchOptions options) => new(ShardQuery.Of(query), options.K, options.Filter, options.ExcludeQueryCase,
        options.ExcludeSamePatient, options.ExcludeSameStudy, options.OnePerStudy, options.Exact, options.WithThumbnails);

    public SearchOptions ToOptions() => new()
    {
        K = K, Filter = Filter, ExcludeQueryCase = ExcludeQueryCase, ExcludeSamePatient = ExcludeSamePatient,
        ExcludeSameStudy = ExcludeSameStudy, OnePerStudy = OnePerStudy, Exact = Exact, WithThumbnails = WithThumbnails,
    };
}

/// <summary>A shard's best k, most similar first; each record as its protobuf bytes (CaseRecord is a protobuf message).</summary>
[GenerateSerializer, Alias("medsearch.v1.shard-hits")]
public sealed record ShardHits([property: Id(0)] ShardHit[] Hits, [property: Id(1)] ShardRefusal? Refusal);

[GenerateSerializer, Alias("medsearch.v1.shard-hit")]
public sealed record ShardHit(
    [property: Id(0)] float Similarity,
    [property: Id(1)] byte[] Record,
    [property: Id(2)] string? QuerySlice,
    [property: Id(3)] byte[]? QueryThumbnail,
    [property: Id(4)] string? HitSliceKey,
    [property: Id(5)] byte[]? HitThumbnail,
    [property: Id(6)] float SliceSimilarity);

[GenerateSerializer, Alias("medsearch.v1.shard-ingest-item")]
public sealed record ShardIngestItem(
    [property: Id(0)] string Name,
    [property: Id(1)] byte[] Bytes,
    [property: Id(2)] string[]? Labels,
    [property: Id(3)] Dictionary<string, string>? Metadata);

[GenerateSerializer, Alias("medsearch.v1.shard-ingest-result")]
public sealed record ShardIngestResult([property: Id(0)] int Outcome, [property: Id(1)] string? Key, [property: Id(2)] string? Reason);

[GenerateSerializer, Alias("medsearch.v1.shard-update")]
public sealed record ShardUpdate([property: Id(0)] byte[]? Record, [property: Id(1)] ShardRefusal? Refusal);

/// <summary>A shard's counts; the gateway adds them up (index settings and pooling are the cluster's, the same on every shard).</summary>
[GenerateSerializer, Alias("medsearch.v1.shard-stats")]
public sealed record ShardStats(
    [property: Id(0)] long Cases,
    [property: Id(1)] Dictionary<string, long> CasesByModality,
    [property: Id(2)] Dictionary<string, long> CasesByLabel,
    [property: Id(3)] long UnlabelledCases,
    [property: Id(4)] long Indexed,
    [property: Id(5)] long IndexMemoryBytes,
    [property: Id(6)] long StoreBytes,
    [property: Id(7)] long IndexBytes,
    [property: Id(8)] long Series,
    [property: Id(9)] long Studies);
