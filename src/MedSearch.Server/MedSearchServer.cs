using MedSearch.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MedSearch.Server;

/// <summary>
/// Builds the gRPC host: Kestrel speaking HTTP/2 (h2c on http:// URLs, as gRPC clients expect), the search
/// service, grpc.health.v1 and server reflection. The collection is opened before the host starts so that a
/// locked or mismatched data directory fails the start, not the first request.
/// </summary>
public static class MedSearchServer
{
    public static WebApplication Build(ServerOptions options, Action<string>? log = null)
    {
        var collection = Collection.Open(options.DataPath, options.Collection, log);
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
            builder.WebHost.UseUrls(options.Urls);
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Limits.MaxRequestBodySize = options.MaxRequestBytes;
                kestrel.ConfigureEndpointDefaults(endpoint => endpoint.Protocols = HttpProtocols.Http2);
            });
            // Registered through a factory so that the container owns it: disposing the host (stopped or not) closes
            // the store and releases the data directory's lock.
            builder.Services.AddSingleton(_ => collection);
            builder.Services.AddSingleton(new InferenceGate(options.Inference));
            builder.Services.AddGrpc(grpc =>
            {
                grpc.MaxReceiveMessageSize = options.MaxRequestBytes;
                grpc.EnableDetailedErrors = false;
            });
            builder.Services.AddGrpcReflection();
            builder.Services.AddGrpcHealthChecks().AddCheck("collection", () =>
                Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy($"{collection.Count} cases"));

            var app = builder.Build();
            app.MapGrpcService<SearchGrpcService>();
            app.MapGrpcService<CaseGrpcService>();
            app.MapGrpcService<CollectionGrpcService>();
            app.MapGrpcHealthChecksService();
            app.MapGrpcReflectionService();
            return app;
        }
        catch
        {
            collection.Dispose();
            throw;
        }
    }
}
