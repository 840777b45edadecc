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
/// The case space is opened before the host starts so that a locked or mismatched data directory fails the start,
/// not the first request.
/// </summary>
public static class MedSearchServer
{
    public static WebApplication Build(ServerOptions options, Action<string>? log = null) => Build(options, log, given: null);

    /// <summary>
    /// The console's JSON lines (<see cref="ServerOptions.JsonLogs"/>): each with its UTC time; the formatter writes
    /// no Timestamp field at all unless it is given a format.
    /// </summary>
    public static void JsonLogFormat(Microsoft.Extensions.Logging.Console.JsonConsoleFormatterOptions json)
    {
        json.UseUtcTimestamp = true;
        json.TimestampFormat = "yyyy'-'MM'-'dd'T'HH':'mm':'ss.fff'Z'";
    }

    /// <summary>Serves a case space the caller opened (a cluster client's, say); the server owns it from here.</summary>
    public static WebApplication Build(ServerOptions options, ICaseSpace space, Action<string>? log = null) => Build(options, log, space);

    private static WebApplication Build(ServerOptions options, Action<string>? log, ICaseSpace? given)
    {
        // Security settings first: a bad certificate or an exposed address without keys fails before the case space opens.
        var keys = options.KeysPath is null ? null : ApiKeyStore.Load(options.KeysPath);
        var corsOrigins = CorsOriginsOf(options.CorsOrigins);
        if (keys is { Keys.Count: 0 })
            throw new ServerOptionsException($"--keys {keys.Path}: the file has no keys, so every call would be refused; add one with `medsearch keys add`");
        var tls = TlsSettings.Load(options);
        var listeners = Listeners.Plan(options, keys is not null, tls);
        var requestMemory = RequestMemoryOf(options);
        log?.Invoke(keys is null
            ? "unauthenticated (no --keys): listening on loopback only"
            : $"API keys: {keys.Keys.Count} from {keys.Path}; read and write permissions enforced");
        if (tls is not null)
            log?.Invoke($"TLS: {tls.Subject}{(tls.RequiresClientCertificate ? "; client certificates required (--tls-client-ca)" : "")}");

        // A cluster's space is made inside the host, from the silo it joins; a single node's is opened now.
        var cluster = given is null && options.Cluster is { } wanted ? ClusterSilo.Layout(wanted, options.Collection) : null;
        var space = given ?? (cluster is null ? OpenSpace(options, log) : null);
        try
        {
            // Settings come from ServerOptions, never appsettings files, so the host must not watch for them: it would
            // watch its content root (the working directory) with every folder below it, and each write there (the
            // audit log, a data directory) would wake the watcher's thread; 3 % of the CPU of a loaded server.
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
            // A silo logs every placement and membership step at information level.
            builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning);
            if (options.JsonLogs)
            {
                builder.Logging.ClearProviders();
                builder.Logging.AddJsonConsole(JsonLogFormat);
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
            if (keys is not null) builder.Services.AddSingleton(keys).AddSingleton<ApiKeys>().AddSingleton<ApiKeyInterceptor>();
            builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddMeter(AuditLog.MeterName)
                .AddPrometheusExporter());
            // Registered through a factory so that the container owns it: disposing the host (stopped or not) closes
            // the store and releases the data directory's lock.
            if (cluster is not null) ClusterSilo.Join(builder, options.Cluster!, cluster, options.Collection);
            else builder.Services.AddSingleton<ICaseSpace>(_ => space!);
            builder.Services.AddSingleton(new InferenceGate(options.Inference));
            builder.Services.AddSingleton(requestMemory);
            builder.Services.AddGrpc(grpc =>
            {
                grpc.MaxReceiveMessageSize = options.MaxRequestBytes;
                grpc.EnableDetailedErrors = false;
                // In this order: the audit wraps the key check, so refused calls are logged too.
                grpc.Interceptors.Add<AuditInterceptor>();
                if (keys is not null) grpc.Interceptors.Add<ApiKeyInterceptor>();
            }).AddJsonTranscoding();
            builder.Services.AddGrpcReflection();
            if (corsOrigins.Length > 0)
                builder.Services.AddCors(cors => cors.AddDefaultPolicy(policy => policy.WithOrigins(corsOrigins)
                    .AllowAnyHeader().WithMethods("GET", "POST")
                    // gRPC-Web reads its status from these; the retry hint of a busy server too.
                    .WithExposedHeaders("Grpc-Status", "Grpc-Message", "Grpc-Encoding", "Grpc-Accept-Encoding", InferenceGate.RetryAfterTrailer)));
            builder.Services.AddGrpcHealthChecks().AddCheck<CaseSpaceHealth>("collection");

            var app = builder.Build();
            // A clean stop, after the last call has finished: a checkpoint with an index snapshot, so the next start
            // loads the index instead of rebuilding it from the store (ingest and relabelling checkpoint the store
            // only). A crash skips this and costs that rebuild, never a case.
            // A cluster's shards do this themselves when the silo hands them over on its way down.
            if (space is not null) app.Lifetime.ApplicationStopped.Register(() => space.CheckpointAsync(CancellationToken.None).GetAwaiter().GetResult());
            // Opened now so that an unwritable --audit-file fails the start, not the first call.
            app.Services.GetRequiredService<AuditLog>();
            // Resolved now so that the container owns the case space even if no call ever asks for it: a singleton
            // made by a factory is disposed only once created, and otherwise the data directory's lock would outlive
            // a server that was started and stopped without serving a call.
            app.Services.GetRequiredService<ICaseSpace>();
            app.UseOpenTelemetryPrometheusScrapingEndpoint(context => listeners.IsMetricsConnection(context) && context.Request.Path == "/metrics");
            app.MapWhen(listeners.IsMetricsConnection, metricsOnly => metricsOnly.Run(context =>
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }));
            // gRPC bounds each message itself (MaxReceiveMessageSize, checked on the length prefix before the message is
            // buffered) and answers RESOURCE_EXHAUSTED; Kestrel's body limit, checked as the body is read, would race it
            // and cut an oversize call with UNKNOWN instead. So gRPC and gRPC-Web calls go by the message limit (a
            // streamed ingest by each file's), and JSON routes, which read the whole body, keep the body limit.
            app.Use((context, next) =>
            {
                if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true
                    && context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } body)
                    body.MaxRequestBodySize = null;
                return next(context);
            });
            app.UseRouting();
            if (corsOrigins.Length > 0) app.UseCors();
            app.UseGrpcWeb(new GrpcWebOptions { DefaultEnabled = true });
            app.Use(requestMemory.Meter);
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
            // Not yet the container's: released here, or the data directory's lock would outlive the failed start.
            (space as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <summary>The cases this server answers from.</summary>
    private static ICaseSpace OpenSpace(ServerOptions options, Action<string>? log) =>
        new LocalCaseSpace(Collection.Open(options.DataPath, options.Collection, log));

    /// <summary>The request memory budget; one that a single largest request would not fit is refused.</summary>
    private static RequestMemory RequestMemoryOf(ServerOptions options)
    {
        long limit = options.RequestMemoryBytes ?? RequestMemory.DefaultLimit(options.MaxRequestBytes);
        if (limit < options.MaxRequestBytes)
            throw new ServerOptionsException(
                $"--request-memory-mb {limit / (1024 * 1024)} is less than --max-request-mb {options.MaxRequestBytes / (1024 * 1024)}: a request of the largest size allowed could never be accepted");
        return new RequestMemory(limit, options.MaxRequestBytes);
    }

    /// <summary>The --cors-origins list, each an http(s) origin without path; `*` is refused.</summary>
    private static string[] CorsOriginsOf(string? text)
    {
        var origins = (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var origin in origins)
        {
            if (origin == "*")
                throw new ServerOptionsException("--cors-origins: `*` would let any web page call the API; list the viewer origins, e.g. https://viewer.example.org");
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/" || origin.EndsWith('/'))
                throw new ServerOptionsException($"--cors-origins: `{origin}` is not an origin (scheme://host[:port], no path)");
        }
        return origins;
    }
}

/// <summary>Healthy while the case space answers: a cluster whose shards cannot all be counted is not.</summary>
internal sealed class CaseSpaceHealth(ICaseSpace space) : Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
{
    public async Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(
        Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellation)
    {
        try
        {
            return Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy($"{await space.CountAsync(cancellation)} cases");
        }
        catch (CaseSpaceUnavailableException e)
        {
            return Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Unhealthy(e.Message);
        }
    }
}
