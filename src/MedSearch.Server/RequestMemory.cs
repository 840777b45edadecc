using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MedSearch.Server;

/// <summary>
/// A bound on the request bytes all calls hold at once. --max-request-mb bounds one message; without this, enough
/// calls uploading large images at the same time (each buffered whole by gRPC before its handler runs) would still
/// exhaust memory. A gRPC call's bytes are charged as they arrive, before gRPC has buffered its message whole, and
/// a call they do not fit gets RESOURCE_EXHAUSTED. A unary call's charge lasts until it ends; a streamed ingest's
/// covers the files it still holds. A JSON body (transcoded routes) is charged as it arrives too, and one that does
/// not fit gets HTTP 429. Compressed gRPC messages are refused (UNIMPLEMENTED): a few KiB of gzip can inflate to a
/// whole message, which the bytes that arrive would not show; images are compressed already.
/// </summary>
public sealed class RequestMemory
{
    /// <summary>The retry hint sent with a refusal: a large upload holding the budget takes a while to finish.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    // gRPC's length-prefixed framing: a compressed flag, then the message length, big-endian.
    private const int PrefixBytes = 5;

    // A streamed ingest keeps one group of files until it is stored, and reads the next file meanwhile.
    private const int HandedOverHeld = CaseGrpcService.IngestResultGroup + 1;

    private readonly int _largestMessage;
    private ILogger? _logger;
    private long _held;

    /// <param name="limitBytes">The budget; at least <paramref name="maxMessageBytes"/>.</param>
    /// <param name="maxMessageBytes">gRPC's message limit and Kestrel's body limit, what one JSON body may be at most.</param>
    public RequestMemory(long limitBytes, int maxMessageBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessageBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(limitBytes, maxMessageBytes);
        Limit = limitBytes;
        _largestMessage = maxMessageBytes;
    }

    public long Limit { get; }

    /// <summary>Bytes charged to calls now.</summary>
    public long Held => Volatile.Read(ref _held);

    /// <summary>The default budget: an eighth of the memory this process may use (a message is held twice, buffered and parsed), never less than one largest message.</summary>
    public static long DefaultLimit(int maxRequestBytes) => Math.Max(maxRequestBytes, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);

    /// <summary>Middleware: meters the body of every call that has one.</summary>
    public Task Meter(HttpContext context, RequestDelegate next)
    {
        if (HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method) || context.Request.ContentLength == 0) return next(context);
        _logger ??= context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger<RequestMemory>();
        // After gRPC-Web's middleware, so that a grpc-web-text body is seen decoded, in gRPC's framing.
        return context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true
            ? MeterGrpcAsync(context, next)
            : MeterBodyAsync(context, next);
    }

    private async Task MeterGrpcAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<IRequestBodyPipeFeature>() is not { } body)
        {
            await next(context);
            return;
        }
        var metered = new MeteredReader(body.Reader, this);
        // Not put back afterwards: the server resets a connection's features for its next request.
        context.Features.Set<IRequestBodyPipeFeature>(metered);
        try
        {
            await next(context);
        }
        finally
        {
            metered.ReleaseAll();
        }
    }

    /// <summary>
    /// A body read whole before it is parsed (JSON): read here, charged as it arrives, and handed on from memory. The
    /// transcoding reads the body itself and would answer any failure of that read as a bad request, not a busy server.
    /// </summary>
    private async Task MeterBodyAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: false })
        {
            await next(context);
            return;
        }
        long charged = 0;
        try
        {
            // Kestrel's body limit still applies to this read (HTTP 413 beyond it). Grown as bytes arrive and are
            // charged, not sized from Content-Length: a declared length alone would take memory the budget never saw.
            var body = new MemoryStream();
            var chunk = ArrayPool<byte>.Shared.Rent(1 << 16);
            try
            {
                int read;
                while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
                {
                    if (!TryTake(read))
                    {
                        string message = $"a body of {Mib(charged + read)} so far: {Busy(charged)}";
                        _logger!.LogWarning("request memory: refused {Method} {Path}: {Message}", context.Request.Method, context.Request.Path, message);
                        context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                        context.Response.Headers.RetryAfter = Math.Ceiling(RetryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
                        await context.Response.WriteAsync(message);
                        return;
                    }
                    charged += read;
                    body.Write(chunk, 0, read);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(chunk);
            }
            body.Position = 0;
            context.Request.Body = body;
            await next(context);
        }
        finally
        {
            Give(charged);
        }
    }

    private bool TryTake(long bytes)
    {
        long held = Volatile.Read(ref _held);
        while (true)
        {
            if (held + bytes > Limit) return false;
            long seen = Interlocked.CompareExchange(ref _held, held + bytes, held);
            if (seen == held) return true;
            held = seen;
        }
    }

    private void Give(long bytes) => Interlocked.Add(ref _held, -bytes);

    private string Busy(long callHolds) =>
        $"the server is busy: its request memory is full (--request-memory-mb {Limit / (1024 * 1024)}; {Mib(Held)} held by calls in progress" +
        $"{(callHolds > 0 ? $", {Mib(callHolds)} of it by this call" : "")}); retry in {RetryAfter.TotalMilliseconds:0} ms";

    private RpcException Refusal(long bytes, long callHolds)
    {
        RpcException refusal;
        if (callHolds + bytes > Limit)
        {
            // Retrying cannot help: the stream's own files fill the budget.
            refusal = new RpcException(new Status(StatusCode.ResourceExhausted,
                $"this stream's files held ({Mib(callHolds + bytes)} with this one) do not fit the request memory " +
                $"(--request-memory-mb {Limit / (1024 * 1024)}): send smaller files, or raise --request-memory-mb"));
        }
        else
        {
            var trailers = new Metadata { { InferenceGate.RetryAfterTrailer, ((long)RetryAfter.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) } };
            refusal = new RpcException(new Status(StatusCode.ResourceExhausted, Busy(callHolds)), trailers);
        }
        // A unary call is refused before the interceptors, so the audit never sees it (a streamed ingest's is audited too).
        _logger?.LogWarning("request memory: refused a gRPC call: {Message}", refusal.Status.Detail);
        return refusal;
    }

    private RpcException CompressedRefusal()
    {
        const string message = "compressed messages are not accepted (grpc-encoding other than identity): their inflated size is only known once inflated; send them uncompressed";
        _logger?.LogWarning("request memory: refused a gRPC call: {Message}", message);
        return new RpcException(new Status(StatusCode.Unimplemented, message));
    }

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):0.#} MiB";

    /// <summary>
    /// A gRPC call's body reader, charging what it reads: zero-copy, it only looks at the bytes gRPC reads anyway, to
    /// tell where each message starts and ends.
    /// </summary>
    private sealed class MeteredReader(PipeReader inner, RequestMemory budget) : PipeReader, IRequestBodyPipeFeature
    {
        // A read may still complete after the call has ended (a handler that stopped with a read pending): charges,
        // hand-overs and the final release are serialised, and nothing is charged after the release.
        private readonly Lock _lock = new();
        private bool _released;
        private long _charged;
        // Every message held, oldest first: those gRPC has not consumed yet (buffered below it, or being read), and the
        // last ones it has handed to the handler, which a streamed ingest keeps until their group is stored.
        private readonly Queue<Message> _held = new(1);
        private Message? _current;
        private ReadOnlySequence<byte> _last;
        private long _consumed;
        private long _seen;
        // Framing state: prefix bytes seen of the next message and its length so far; the current message's bytes still to come.
        private int _prefixFill;
        private long _length;
        private long _messageLeft;

        public PipeReader Reader => this;

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            // Most reads of a small call complete at once: no state machine for them.
            var pending = inner.ReadAsync(cancellationToken);
            return pending.IsCompletedSuccessfully ? new ValueTask<ReadResult>(Account(pending.Result)) : AccountAsync(pending);
        }

        private async ValueTask<ReadResult> AccountAsync(ValueTask<ReadResult> pending) => Account(await pending);

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result)) return false;
            result = Account(result);
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            _consumed += _last.Slice(_last.Start, consumed).Length;
            _last = default;
            inner.AdvanceTo(consumed, examined);
            lock (_lock) HandOver();
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public void ReleaseAll()
        {
            lock (_lock)
            {
                _released = true;
                budget.Give(_charged);
                _charged = 0;
                _held.Clear();
            }
        }

        private ReadResult Account(ReadResult result)
        {
            // A buffer starts where the last one was consumed; only the bytes past those already seen are new.
            _last = result.Buffer;
            long end = _consumed + result.Buffer.Length;
            if (end <= _seen) return result;
            long at = _seen;
            var fresh = result.Buffer.Slice(_seen - _consumed);
            _seen = end;
            try
            {
                lock (_lock)
                {
                    if (_released) return result;
                    foreach (var segment in fresh)
                    {
                        Frame(segment.Span, at);
                        at += segment.Length;
                    }
                }
            }
            catch
            {
                // The call fails with this read: leave the body reader ready for the server to drain it.
                _last = default;
                inner.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                throw;
            }
            return result;
        }

        /// <param name="data">Bytes of the body, new to the meter.</param>
        /// <param name="at">The offset in the body of its first byte.</param>
        private void Frame(ReadOnlySpan<byte> data, long at)
        {
            while (!data.IsEmpty)
            {
                if (_messageLeft > 0)
                {
                    int arrived = (int)Math.Min(_messageLeft, data.Length);
                    if (_current is not null) Charge(arrived);
                    _messageLeft -= arrived;
                    data = data[arrived..];
                    at += arrived;
                    continue;
                }
                // The first prefix byte is the compressed flag; the next four are the length.
                if (_prefixFill == 0 && data[0] != 0) throw budget.CompressedRefusal();
                if (_prefixFill > 0) _length = (_length << 8) | data[0];
                _prefixFill++;
                data = data[1..];
                at++;
                if (_prefixFill < PrefixBytes) continue;
                // Longer than gRPC's limit: gRPC refuses it on the prefix, without buffering it, so bytes of it that
                // still arrive are not held.
                _current = _length <= budget._largestMessage ? new Message(at + _length) : null;
                if (_current is not null) _held.Enqueue(_current);
                _messageLeft = _length;
                _prefixFill = 0;
                _length = 0;
            }
        }

        /// <summary>Gives back the messages gRPC consumed longest ago, beyond the group a streamed ingest holds.</summary>
        private void HandOver()
        {
            int handed = 0;
            foreach (var message in _held)
            {
                if (message.End > _consumed) break;
                handed++;
            }
            for (; handed > HandedOverHeld; handed--)
            {
                var oldest = _held.Dequeue();
                budget.Give(oldest.Charged);
                _charged -= oldest.Charged;
            }
        }

        private void Charge(long bytes)
        {
            if (!budget.TryTake(bytes)) throw budget.Refusal(bytes, _charged);
            _charged += bytes;
            _current!.Charged += bytes;
        }

        /// <summary>A message held: where it ends in the body, and what it has been charged so far.</summary>
        private sealed class Message(long end)
        {
            public long End { get; } = end;
            public long Charged { get; set; }
        }
    }
}
