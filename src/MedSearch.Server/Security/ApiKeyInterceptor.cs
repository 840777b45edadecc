using Grpc.Core;
using Grpc.Core.Interceptors;

namespace MedSearch.Server.Security;

/// <summary>
/// Checks `authorization: Bearer KEY` against the keys file and the method against <see cref="MethodPermissions"/>
/// before any handler runs. Interceptors run for gRPC-Web and JSON-transcoded calls too, so one check covers them all.
/// Messages never repeat what the caller sent.
/// </summary>
public sealed class ApiKeyInterceptor(ApiKeys keys) : Interceptor
{
    /// <summary>Where the authenticated key id is left for the audit log (<see cref="ServerCallContext.UserState"/>).</summary>
    public const string CallerKey = "medsearch.caller";

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Authorize(ServerCallContext context)
    {
        var required = MethodPermissions.Required(context.Method);
        if (required == Permission.None) return;

        const string scheme = "Bearer ";
        var header = context.RequestHeaders.GetValue("authorization");
        if (header is null || !header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "API key required: send metadata `authorization: Bearer <key>`"));
        var key = keys.Authenticate(header[scheme.Length..].Trim())
            ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "unknown API key"));
        context.UserState[CallerKey] = key.Id;
        if (!key.Permission.Grants(required))
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"API key `{key.Id}` has {key.Permission.Name()} permission; {context.Method} needs {required.Name()}"));
    }
}
