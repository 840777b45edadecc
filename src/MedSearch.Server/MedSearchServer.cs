using Grpc.AspNetCore.Web;
using MedSearch.Engine;
using MedSearch.Server.Observability;
using MedSearch.Server.Page;
using MedSearch.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace MedSearch.Server;

/// <summary>
/// Builds the gRPC host: Kestrel speaking HTTP/2 (h2c on http:// URLs, as gRPC clients expect), the search
/// service, grpc.health.v1 and server reflection, also as gRPC-Web and JSON (transcoding). Around every call: the
/// audit log and request metrics, and the API key check when keys are configured; /metrics on its own listeners.
/// The collection is opened before the host starts so that a locked or mismatched data directory fails the start,
/// not the first request.
/// </summary>
public static class MedSearchServer
{
    public static WebApplication Build(ServerOptions options, Action<string>? log = null)
    {
        // Security settings first: a bad certificate or an exposed address without keys fails before the collection opens.
        var keys = options.KeysPath is null ? null : ApiKeyStore.Load(options.KeysPath);
        if (keys is { Keys.Count: 0 })
            throw new ServerOptionsException($"--keys {keys.Path}: the file has no keys, so every call would be refused; add one with `medsearch keys add`");
        var tls = TlsSettings.Load(options);
        var listeners = Listeners.Plan(options, keys is not null, tls);
        log?.Invoke(keys is null
            ? "unauthenticated (no --keys): listening on loopback only"
            : $"API keys: {keys.Keys.Count} from {keys.Path}; read and write permissions enforced");
        if (tls is not null)
            log?.Invoke($"TLS: {tls.Subject}{(tls.RequiresClientCertificate ? "; client certificates required (--tls-client-ca)" : "")}");

        var collection = Collection.Open(options.DataPath, options.Collection, log);
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
            if (options.JsonLogs)
            {
                builder.Logging.ClearProviders();
                builder.Logging.AddJsonConsole(json => json.UseUtcTimestamp = true);
            }
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Limits.MaxRequestBodySize = options.MaxRequestBytes;
                listeners.Bind(kestrel, tls);
            });
            builder.Services.AddSingleton(listeners);
            builder.Services.AddSingleton(services => new AuditLog(services.GetRequiredService<ILoggerFactory>(),
                services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), options.AuditPath));
            builder.Services.AddSingleton<AuditInterceptor>();
            if (keys is not null) builder.Services.AddSingleton(keys).AddSingleton<ApiKeyInterceptor>();
            builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddMeter(AuditLog.MeterName)
                .AddPrometheusExporter());
            // Registered through a factory so that the container owns it: disposing the host (stopped or not) closes
            // the store and releases the data directory's lock.
            builder.Services.AddSingleton(_ => collection);
            builder.Services.AddSingleton(new InferenceGate(options.Inference));
            builder.Services.AddGrpc(grpc =>
            {
                grpc.MaxReceiveMessageSize = options.MaxRequestBytes;
                grpc.EnableDetailedErrors = false;
                // In this order: the audit wraps the key check, so refused calls are logged too.
                grpc.Interceptors.Add<AuditInterceptor>();
                if (keys is not null) grpc.Interceptors.Add<ApiKeyInterceptor>();
            }).AddJsonTranscoding();
            builder.Services.AddGrpcReflection();
            builder.Services.AddGrpcHealthChecks().AddCheck("collection", () =>
                Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy($"{collection.Count} cases"));

            var app = builder.Build();
            // A clean stop, after the last call has finished: a checkpoint with an index snapshot, so the next start
            // loads the index instead of rebuilding it from the store (ingest and relabelling checkpoint the store
            // only). A crash skips this and costs that rebuild, never a case.
            app.Lifetime.ApplicationStopped.Register(() => collection.Checkpoint(saveIndex: true));
            // Opened now so that an unwritable --audit-file fails the start, not the first call.
            app.Services.GetRequiredService<AuditLog>();
            app.UseOpenTelemetryPrometheusScrapingEndpoint(context => listeners.IsMetricsConnection(context) && context.Request.Path == "/metrics");
            app.MapWhen(listeners.IsMetricsConnection, metricsOnly => metricsOnly.Run(context =>
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }));
            app.UseRouting();
            app.UseGrpcWeb(new GrpcWebOptions { DefaultEnabled = true });
            app.MapGrpcService<SearchGrpcService>();
            app.MapGrpcService<CaseGrpcService>();
            app.MapGrpcService<CollectionGrpcService>();
            app.MapGrpcHealthChecksService();
            app.MapGrpcReflectionService();
            app.MapSearchPage();
            return app;
        }
        catch
        {
            collection.Dispose();
            throw;
        }
    }
}
