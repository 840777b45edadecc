using System.Buffers;
using System.IO.Pipelines;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace MedSearch.Server;

/// <summary>
/// A bound on the request bytes all calls hold at once. --max-request-mb bounds one message; without this, enough
/// calls uploading large images at the same time (each buffered whole by gRPC before its handler runs) would still
/// exhaust memory. Each gRPC message is charged when its 5-byte length prefix arrives, before gRPC buffers it, and a
/// call whose message does not fit gets RESOURCE_EXHAUSTED with a retry hint instead. A unary call's charge lasts
/// until the call ends; a streamed ingest's covers its most recent files, as many as the ingest holds. JSON bodies
/// (transcoded routes) are charged as they are read.
/// </summary>
public sealed class RequestMemory
{
    /// <summary>The retry hint sent with a refusal: a large upload holding the budget takes a while to finish.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    // gRPC's length-prefixed framing: a compressed flag, then the message length, big-endian.
    private const int PrefixBytes = 5;

    // A streamed ingest keeps one group of files until it is stored, and reads the next file meanwhile.
    private const int StreamedMessagesHeld = CaseGrpcService.IngestResultGroup + 1;

    private readonly long _largestMessage;
    private long _held;

    /// <param name="limitBytes">The budget.</param>
    /// <param name="maxMessageBytes">gRPC's message limit: a longer message is refused by gRPC on its prefix, unbuffered, so it is not charged.</param>
    public RequestMemory(long limitBytes, int maxMessageBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limitBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessageBytes);
        Limit = limitBytes;
        _largestMessage = maxMessageBytes;
    }

    public long Limit { get; }

    /// <summary>Bytes charged to calls now.</summary>
    public long Held => Volatile.Read(ref _held);

    /// <summary>The default budget: an eighth of the memory this process may use (a message is held twice, buffered and parsed), never less than one largest message.</summary>
    public static long DefaultLimit(long maxRequestBytes) =>
        Math.Max(maxRequestBytes + PrefixBytes, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);

    /// <summary>Middleware: meters the body of every call that has one.</summary>
    public Task Meter(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<IRequestBodyPipeFeature>() is not { } body || HttpMethods.IsGet(context.Request.Method)) return next(context);
        return MeterAsync(context, next, body);
    }

    private async Task MeterAsync(HttpContext context, RequestDelegate next, IRequestBodyPipeFeature body)
    {
        // After gRPC-Web's middleware, so that a grpc-web-text body is seen decoded, in gRPC's framing.
        bool framed = context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;
        var metered = new MeteredReader(body.Reader, this, framed);
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

    private RpcException Refusal(long bytes, long callHolds)
    {
        var trailers = new Metadata { { InferenceGate.RetryAfterTrailer, ((long)RetryAfter.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture) } };
        string mine = callHolds > 0 ? $", {Mib(callHolds)} of it by this call" : "";
        return new RpcException(new Status(StatusCode.ResourceExhausted,
            $"the server is busy: a request of {Mib(bytes)} does not fit its request memory (--request-memory-mb {Limit / (1024 * 1024)}; " +
            $"{Mib(Held)} held by calls in progress{mine}); retry in {RetryAfter.TotalMilliseconds:0} ms"), trailers);
    }

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):0.#} MiB";

    /// <summary>
    /// The call's body reader, charging what it reads: zero-copy, it only looks at the bytes gRPC reads anyway to find
    /// each message's length prefix.
    /// </summary>
    private sealed class MeteredReader(PipeReader inner, RequestMemory budget, bool framed) : PipeReader, IRequestBodyPipeFeature
    {
        // The charges of the messages still held, oldest first.
        private Queue<long>? _messages;
        private long _charged;
        private ReadOnlySequence<byte> _last;
        private long _consumed;
        private long _seen;
        // Framing state: prefix bytes seen of the current message, its length so far, and its bytes still to come.
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
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public void ReleaseAll()
        {
            budget.Give(_charged);
            _charged = 0;
            _messages?.Clear();
        }

        private ReadResult Account(ReadResult result)
        {
            _last = result.Buffer;
            long end = _consumed + result.Buffer.Length;
            if (end > _seen)
            {
                var fresh = result.Buffer.Slice(_seen - _consumed);
                _seen = end;
                if (framed)
                {
                    foreach (var segment in fresh) Frame(segment.Span);
                }
                else
                {
                    // A JSON body is read whole before it is parsed: all of it is held.
                    Charge(fresh.Length);
                }
            }
            return result;
        }

        private void Frame(ReadOnlySpan<byte> data)
        {
            while (!data.IsEmpty)
            {
                if (_messageLeft > 0)
                {
                    int skip = (int)Math.Min(_messageLeft, data.Length);
                    _messageLeft -= skip;
                    data = data[skip..];
                    continue;
                }
                // The first prefix byte is the compressed flag; the next four are the length.
                if (_prefixFill > 0) _length = (_length << 8) | data[0];
                _prefixFill++;
                data = data[1..];
                if (_prefixFill < PrefixBytes) continue;
                if (_length <= budget._largestMessage) ChargeMessage(PrefixBytes + _length);
                _messageLeft = _length;
                _prefixFill = 0;
                _length = 0;
            }
        }

        private void ChargeMessage(long bytes)
        {
            _messages ??= new Queue<long>(1);
            if (_messages.Count == StreamedMessagesHeld)
            {
                long oldest = _messages.Dequeue();
                budget.Give(oldest);
                _charged -= oldest;
            }
            Charge(bytes);
            _messages.Enqueue(bytes);
        }

        private void Charge(long bytes)
        {
            if (!budget.TryTake(bytes)) throw budget.Refusal(bytes, _charged);
            _charged += bytes;
        }
    }
}
