using System.Diagnostics.Metrics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace MedSearch.Server.Observability;

/// <summary>
/// What one call did, as far as an auditor may see it: who (the API key's id, never its secret), what method, the
/// outcome and how long it took, and a few counts. Nothing from the request itself: no image bytes, case keys,
/// UIDs or patient identifiers.
/// </summary>
public sealed record AuditEntry(
    DateTimeOffset Time,
    string Caller,
    string Method,
    StatusCode Status,
    double LatencyMs,
    int MessagesIn,
    int MessagesOut,
    int? K,
    int? Neighbours,
    int? Deleted);

/// <summary>
/// Writes each <see cref="AuditEntry"/> to the "MedSearch.Audit" logger and, when configured, as a JSON line to the
/// audit file; and records it as the request metrics (rpc.server.duration by service, method and status).
/// </summary>
public sealed class AuditLog : IDisposable
{
    public const string Category = "MedSearch.Audit";
    public const string MeterName = "MedSearch.Server";

    private readonly ILogger _logger;
    private readonly StreamWriter? _file;
    private readonly Lock _fileLock = new();
    private readonly Histogram<double> _duration;

    public AuditLog(ILoggerFactory loggers, IMeterFactory meters, string? path)
    {
        _logger = loggers.CreateLogger(Category);
        _duration = meters.Create(MeterName).CreateHistogram<double>("rpc.server.duration", "ms", "Duration of gRPC calls, by method and gRPC status");
        if (path is null) return;
        try
        {
            var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read });
            _file = new StreamWriter(stream) { AutoFlush = true };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ServerOptionsException($"--audit-file {path}: cannot open for appending ({e.Message})");
        }
    }

    public void Record(AuditEntry entry)
    {
        _logger.LogInformation(
            "{Time} caller={Caller} method={Method} status={Status} latency_ms={LatencyMs:F1} in={MessagesIn} out={MessagesOut} k={K} neighbours={Neighbours} deleted={Deleted}",
            entry.Time.ToString("O"), entry.Caller, entry.Method, entry.Status, entry.LatencyMs, entry.MessagesIn, entry.MessagesOut, entry.K, entry.Neighbours, entry.Deleted);

        int slash = entry.Method.LastIndexOf('/');
        _duration.Record(entry.LatencyMs,
            new KeyValuePair<string, object?>("rpc.system", "grpc"),
            new KeyValuePair<string, object?>("rpc.service", slash > 0 ? entry.Method[1..slash] : entry.Method),
            new KeyValuePair<string, object?>("rpc.method", entry.Method[(slash + 1)..]),
            new KeyValuePair<string, object?>("rpc.grpc.status_code", (int)entry.Status));

        if (_file is null) return;
        var line = JsonSerializer.Serialize(entry, AuditJson.Default.AuditEntry);
        lock (_fileLock) _file.WriteLine(line);
    }

    public void Dispose() => _file?.Dispose();
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
[JsonSerializable(typeof(AuditEntry))]
internal sealed partial class AuditJson : JsonSerializerContext;
