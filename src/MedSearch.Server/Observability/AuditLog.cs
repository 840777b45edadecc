using System.Buffers;
using System.Diagnostics.Metrics;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
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
/// <remarks>
/// The file is written by a writer task of its own, a batch of lines per write: a call only queues its entry. A write
/// per call on the call's thread, under a lock, cost a system call per request and stalled every finishing call
/// whenever one write waited on the disk. The queue is bounded; when the disk falls that far behind, a call writes
/// its own line and waits for it, so a line is never dropped for speed. Lines still queued when the process is
/// killed are lost (a clean stop writes them all); ones a failed write loses are counted in an error log line.
/// </remarks>
public sealed class AuditLog : IDisposable
{
    public const string Category = "MedSearch.Audit";
    public const string MeterName = "MedSearch.Server";

    // Far more than a second of calls, and a few MiB at most.
    private const int QueueCapacity = 16_384;

    private readonly ILogger _logger;
    private readonly Histogram<double> _duration;
    private readonly FileStream? _file;
    // Lines are made here and reach the file a batch at a time: a Utf8JsonWriter over the file itself would flush
    // the file (a system call) with every line.
    private readonly ArrayBufferWriter<byte> _lines = new(1 << 16);
    private readonly Utf8JsonWriter? _json;
    private readonly Lock _fileLock = new();
    private readonly Channel<AuditEntry>? _queue;
    private readonly Task? _writer;
    private bool _disposed;

    public AuditLog(ILoggerFactory loggers, IMeterFactory meters, string? path)
    {
        _logger = loggers.CreateLogger(Category);
        _duration = meters.Create(MeterName).CreateHistogram<double>("rpc.server.duration", "ms", "Duration of gRPC calls, by method and gRPC status");
        if (path is null) return;
        try
        {
            _file = new FileStream(path, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 0 });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ServerOptionsException($"--audit-file {path}: cannot open for appending ({e.Message})");
        }
        // Lines one after another, not one JSON document: the writer is reset after each.
        _json = new Utf8JsonWriter(_lines, new JsonWriterOptions { SkipValidation = true });
        _queue = Channel.CreateBounded<AuditEntry>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true });
        _writer = Task.Run(WriteQueuedAsync);
    }

    public void Record(AuditEntry entry)
    {
        // Checked first: the call's arguments are boxed into an array before the logger would look at its level.
        if (_logger.IsEnabled(LogLevel.Information))
        {
            _logger.LogInformation(
                "{Time} caller={Caller} method={Method} status={Status} latency_ms={LatencyMs:F1} in={MessagesIn} out={MessagesOut} k={K} neighbours={Neighbours} deleted={Deleted}",
                entry.Time.ToString("O"), entry.Caller, entry.Method, entry.Status, entry.LatencyMs, entry.MessagesIn, entry.MessagesOut, entry.K, entry.Neighbours, entry.Deleted);
        }

        int slash = entry.Method.LastIndexOf('/');
        _duration.Record(entry.LatencyMs,
            new KeyValuePair<string, object?>("rpc.system", "grpc"),
            new KeyValuePair<string, object?>("rpc.service", slash > 0 ? entry.Method[1..slash] : entry.Method),
            new KeyValuePair<string, object?>("rpc.method", entry.Method[(slash + 1)..]),
            new KeyValuePair<string, object?>("rpc.grpc.status_code", (int)entry.Status));

        if (_queue is null || _queue.Writer.TryWrite(entry)) return;
        lock (_fileLock)
        {
            // Full (the disk is behind) or closed (a call still ending while the server stops): written here. A
            // failure is logged, not thrown: it would replace the outcome of a call that has done its work.
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                Write(entry);
                WriteOut();
            }
            catch (Exception e)
            {
                if (!_disposed)
                {
                    _lines.ResetWrittenCount();
                    _json!.Reset();
                }
                _logger.LogError("audit file: the line of a {Method} call is lost, the write failed: {Error}", entry.Method, e.Message);
            }
        }
    }

    public void Dispose()
    {
        if (_queue is null) return;
        _queue.Writer.TryComplete();
        try
        {
            _writer!.GetAwaiter().GetResult();
        }
        finally
        {
            lock (_fileLock)
            {
                if (!_disposed)
                {
                    _disposed = true;
                    _json!.Dispose();
                    _file!.Dispose();
                }
            }
        }
    }

    private async Task WriteQueuedAsync()
    {
        var reader = _queue!.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            bool more = true;
            while (more)
            {
                // A chunk at a time, so that calls finding the queue full get the lock between chunks.
                lock (_fileLock)
                {
                    int lines = 0;
                    try
                    {
                        while (_lines.WrittenCount < 1 << 16)
                        {
                            if (!reader.TryRead(out var entry))
                            {
                                more = false;
                                break;
                            }
                            Write(entry);
                            lines++;
                        }
                        WriteOut();
                    }
                    catch (Exception e)
                    {
                        // The writer lives on, without the chunk's part-made lines: the next chunk may find the disk writable again.
                        _lines.ResetWrittenCount();
                        _json!.Reset();
                        _logger.LogError("audit file: a write failed and up to {Lines} lines are lost: {Error}", lines, e.Message);
                    }
                }
            }
        }
    }

    private void Write(AuditEntry entry)
    {
        JsonSerializer.Serialize(_json!, entry, AuditJson.Default.AuditEntry);
        _json!.Flush();
        _json.Reset();
        _lines.Write("\n"u8);
    }

    private void WriteOut()
    {
        try
        {
            _file!.Write(_lines.WrittenSpan);
        }
        finally
        {
            _lines.ResetWrittenCount();
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
[JsonSerializable(typeof(AuditEntry))]
internal sealed partial class AuditJson : JsonSerializerContext;
