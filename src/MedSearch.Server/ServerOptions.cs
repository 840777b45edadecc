using MedSearch.Engine;

namespace MedSearch.Server;

/// <summary>Settings of `medsearch serve`, bound from the command line and environment variables.</summary>
public sealed record ServerOptions
{
    public const string DefaultUrls = "http://127.0.0.1:5080";

    /// <summary>
    /// Where `medsearch serve` puts the search page and JSON routes when given no --http1-urls and no TLS: browsers
    /// do not speak cleartext HTTP/2, which is all the gRPC port offers without TLS.
    /// </summary>
    public const string DefaultPageUrls = "http://127.0.0.1:5081";
    public const string KeysEnvironmentVariable = "MEDSEARCH_KEYS";
    public const string TlsCertificateEnvironmentVariable = "MEDSEARCH_TLS_CERT";
    public const string TlsKeyEnvironmentVariable = "MEDSEARCH_TLS_KEY";
    public const string TlsClientCaEnvironmentVariable = "MEDSEARCH_TLS_CLIENT_CA";
    public const string AuditFileEnvironmentVariable = "MEDSEARCH_AUDIT_FILE";
    public const string MetricsUrlsEnvironmentVariable = "MEDSEARCH_METRICS_URLS";
    public const string MaxRequestMbEnvironmentVariable = "MEDSEARCH_MAX_REQUEST_MB";
    public const string MaxKEnvironmentVariable = "MEDSEARCH_MAX_K";
    public const string InferenceConcurrencyEnvironmentVariable = "MEDSEARCH_INFERENCE_CONCURRENCY";
    public const string InferenceQueueEnvironmentVariable = "MEDSEARCH_INFERENCE_QUEUE";
    public const string RequestMemoryMbEnvironmentVariable = "MEDSEARCH_REQUEST_MEMORY_MB";

    public const int DefaultMaxRequestMb = 256;

    /// <summary>The largest --max-request-mb: Kestrel's and gRPC's message limits are 32-bit byte counts.</summary>
    public const int MaxRequestMbLimit = int.MaxValue / (1024 * 1024);

    /// <summary>The largest --request-memory-mb: 1 TiB.</summary>
    public const int RequestMemoryMbLimit = 1024 * 1024;

    public required string DataPath { get; init; }

    /// <summary>gRPC listeners, ';'-separated: http:// is HTTP/2 only (h2c), https:// also HTTP/1.1.</summary>
    public string Urls { get; init; } = DefaultUrls;

    /// <summary>
    /// Extra HTTP/1.1-only listeners for callers that cannot speak h2c (gRPC-Web from browsers, JSON over plain
    /// HTTP): Kestrel cannot offer HTTP/1.1 and cleartext HTTP/2 on one port.
    /// </summary>
    public string? Http1Urls { get; init; }

    /// <summary>
    /// Browser origins (e.g. https://viewer.hospital.example), ','-separated, whose pages may call the API across
    /// origins (a viewer such as OHIF served from elsewhere); none by default. Explicit origins only: `*` would let
    /// any page a user opens call the archive with their key.
    /// </summary>
    public string? CorsOrigins { get; init; }

    /// <summary>HTTP/1.1 listeners that serve only the Prometheus scrape endpoint /metrics, without API keys.</summary>
    public string? MetricsUrls { get; init; }

    /// <summary>The API keys file (see `medsearch keys`); when set, every call but health and reflection needs a key.</summary>
    public string? KeysPath { get; init; }

    /// <summary>PEM certificate (chain) and private key for https:// listeners.</summary>
    public string? TlsCertificatePath { get; init; }
    public string? TlsKeyPath { get; init; }

    /// <summary>PEM certificate(s) of the authority whose client certificates are accepted; set = mutual TLS.</summary>
    public string? TlsClientCaPath { get; init; }

    /// <summary>A file that receives the audit log too, one JSON object per line (appended).</summary>
    public string? AuditPath { get; init; }

    /// <summary>Console logs as JSON objects (one per line) instead of text.</summary>
    public bool JsonLogs { get; init; }

    public CollectionOptions Collection { get; init; } = new();

    /// <summary>Set: this server is a silo of a sharded cluster (and its gateway) instead of a single node over <see cref="DataPath"/>.</summary>
    public Cluster.ClusterOptions? Cluster { get; init; }

    /// <summary>Bounds on concurrent query-image embedding (see <see cref="InferenceGate"/>).</summary>
    public InferenceOptions Inference { get; init; } = new();

    /// <summary>Largest request accepted: an uncompressed multi-frame DICOM can be large, but not unbounded.</summary>
    public int MaxRequestBytes { get; init; } = DefaultMaxRequestMb * 1024 * 1024;

    /// <summary>
    /// Request bytes all calls may hold at once (see <see cref="RequestMemory"/>); null: an eighth of the memory
    /// available to the process, and at least one largest request.
    /// </summary>
    public long? RequestMemoryBytes { get; init; }
}

/// <summary>A server setting that cannot work; the message names the option and says why.</summary>
public sealed class ServerOptionsException(string message) : Exception(message);
