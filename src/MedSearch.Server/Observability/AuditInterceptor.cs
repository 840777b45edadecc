using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using MedSearch.Protocol.V1;
using MedSearch.Server.Security;

namespace MedSearch.Server.Observability;

/// <summary>
/// The outermost interceptor: times every call (refused ones included, since it wraps the API key check), counts the
/// messages each way and hands one <see cref="AuditEntry"/> to the <see cref="AuditLog"/> when the call ends.
/// </summary>
public sealed class AuditInterceptor(AuditLog audit) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var call = new Call(context) { MessagesIn = 1 };
        call.Saw(request);
        try
        {
            var response = await continuation(request, context);
            call.Saw(response);
            call.MessagesOut = 1;
            return response;
        }
        catch (Exception e) { call.Failed(e); throw; }
        finally { audit.Record(call.End()); }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var call = new Call(context);
        try
        {
            var response = await continuation(new CountingReader<TRequest>(requestStream, call), context);
            call.Saw(response);
            call.MessagesOut = 1;
            return response;
        }
        catch (Exception e) { call.Failed(e); throw; }
        finally { audit.Record(call.End()); }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var call = new Call(context) { MessagesIn = 1 };
        call.Saw(request);
        try { await continuation(request, new CountingWriter<TResponse>(responseStream, call), context); }
        catch (Exception e) { call.Failed(e); throw; }
        finally { audit.Record(call.End()); }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var call = new Call(context);
        try { await continuation(new CountingReader<TRequest>(requestStream, call), new CountingWriter<TResponse>(responseStream, call), context); }
        catch (Exception e) { call.Failed(e); throw; }
        finally { audit.Record(call.End()); }
    }

    private sealed class Call(ServerCallContext context)
    {
        private readonly long _started = Stopwatch.GetTimestamp();
        private readonly DateTimeOffset _time = DateTimeOffset.UtcNow;
        private StatusCode? _failure;
        private int? _k;
        private int? _neighbours;
        private int? _deleted;

        public int MessagesIn;
        public int MessagesOut;

        /// <summary>Counts only; the messages' contents never reach the log.</summary>
        public void Saw(object message)
        {
            switch (message)
            {
                case SearchRequest { HasK: true } search: _k = search.K; break;
                case ClassifyRequest { Search.HasK: true } classify: _k = classify.Search.K; break;
                case SearchResponse search: _neighbours = search.Neighbours.Count; break;
                case ClassifyResponse classify: _neighbours = classify.Neighbours.Count; break;
                case DeleteResponse delete: _deleted = delete.Deleted; break;
            }
        }

        /// <summary>What gRPC will answer for this exception: its status, CANCELLED for a cancelled call, else UNKNOWN.</summary>
        public void Failed(Exception e) => _failure = e switch
        {
            RpcException rpc => rpc.StatusCode,
            OperationCanceledException when context.CancellationToken.IsCancellationRequested => StatusCode.Cancelled,
            _ => StatusCode.Unknown,
        };

        public AuditEntry End() => new(
            _time,
            context.UserState.TryGetValue(ApiKeyInterceptor.CallerKey, out var caller) ? (string)caller : "anonymous",
            context.Method,
            _failure ?? context.Status.StatusCode,
            Stopwatch.GetElapsedTime(_started).TotalMilliseconds,
            MessagesIn, MessagesOut, _k, _neighbours, _deleted);
    }

    private sealed class CountingReader<T>(IAsyncStreamReader<T> inner, Call call) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!await inner.MoveNext(cancellationToken)) return false;
            Interlocked.Increment(ref call.MessagesIn);
            return true;
        }
    }

    private sealed class CountingWriter<T>(IServerStreamWriter<T> inner, Call call) : IServerStreamWriter<T>
    {
        public WriteOptions? WriteOptions
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        public async Task WriteAsync(T message)
        {
            await inner.WriteAsync(message);
            Interlocked.Increment(ref call.MessagesOut);
        }
    }
}
