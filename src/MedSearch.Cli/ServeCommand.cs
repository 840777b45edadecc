using MedSearch.Cluster;
using MedSearch.Engine;
using MedSearch.Server;
using MedSearch.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MedSearch.Cli;

public static class ServeCommand
{
    private static readonly string Help = $"""
        usage: medsearch serve [--data DIR] [--urls URLS] [--model M] [--device D] [--keys FILE]
                               [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]] [--http1-urls URLS]
                               [--metrics-urls URLS] [--audit-file FILE] [--log-format text|json] [--cors-origins LIST]
                               [--max-request-mb N] [--request-memory-mb N] [--max-k N] [--inference-concurrency N] [--inference-queue N]
                               [--cluster DIR [--shards N] [--silo-port P] [--gateway-port P] [--cluster-primary HOST:PORT]
                                [--cluster-id ID]]

        Runs the gRPC service over the data directory: medsearch.v1.SearchService, CaseService, CollectionService,
        grpc.health.v1 and server reflection, also as gRPC-Web and as JSON over HTTP (e.g. GET /v1/stats). Every
        call is audited: one line per call with the caller's key id, method, status, counts and latency, never
        patient identifiers or image bytes. Stops cleanly on Ctrl-C or SIGTERM.

        Without --keys the server is unauthenticated and listens on loopback only; a non-loopback URL is refused.

        options:
          --data DIR           data directory (default: $MEDSEARCH_DATA, else ./index-data)
          --urls URLS          where gRPC listens, ';'-separated (default {ServerOptions.DefaultUrls}: loopback only);
                               http:// is HTTP/2 only (h2c), https:// serves HTTP/2 and HTTP/1.1; host: an IP
                               address, localhost (= 127.0.0.1) or * (every IPv4 address)
          --http1-urls URLS    extra HTTP/1.1-only listeners for gRPC-Web and JSON callers that cannot speak
                               cleartext HTTP/2, and the search page (default: http://127.0.0.1:5081 when neither
                               --urls nor TLS is given, else none; with TLS the page is on the gRPC port too)
          --cors-origins LIST  browser origins allowed to call the API from their pages (a viewer served elsewhere,
                               e.g. https://viewer.example.org), ','-separated; default none (same origin only)
          --metrics-urls URLS  HTTP/1.1 listeners serving only the Prometheus endpoint /metrics, without API keys
                               (default: $MEDSEARCH_METRICS_URLS, else none)
          --keys FILE          API keys file (see `medsearch keys`): every call but health and reflection then needs
                               `authorization: Bearer <key>`, a read key for Search, Classify, Get, Stats and
                               ListLabels, a write key for anything else (default: $MEDSEARCH_KEYS)
          --tls-cert PEM       server certificate (chain) for https:// URLs (default: $MEDSEARCH_TLS_CERT)
          --tls-key PEM        its private key (default: $MEDSEARCH_TLS_KEY)
          --tls-client-ca PEM  mutual TLS: require a client certificate issued by this authority
                               (default: $MEDSEARCH_TLS_CLIENT_CA)
          --audit-file FILE    also append the audit log to FILE, one JSON object per line
                               (default: $MEDSEARCH_AUDIT_FILE, else only the log category MedSearch.Audit)
          --log-format F       text (default) or json: one JSON object per log line on the console

        limits (a request beyond them is refused, never an out-of-memory):
          --max-request-mb N   largest request message, MiB, 1 to {ServerOptions.MaxRequestMbLimit}; a larger one gets RESOURCE_EXHAUSTED
                               (default: $MEDSEARCH_MAX_REQUEST_MB, else {ServerOptions.DefaultMaxRequestMb})
          --request-memory-mb N
                               request bytes all calls may hold at once, MiB, --max-request-mb to {ServerOptions.RequestMemoryMbLimit}; a call whose message
                               does not fit gets RESOURCE_EXHAUSTED with a `{InferenceGate.RetryAfterTrailer}` trailer (default:
                               $MEDSEARCH_REQUEST_MEMORY_MB, else an eighth of the memory available to the server)
          --max-k N            largest k a search or classification may ask for, 1 to {CollectionOptions.MaxNeighboursLimit}; more is
                               INVALID_ARGUMENT (default: $MEDSEARCH_MAX_K, else {CollectionOptions.MaxNeighboursLimit})
          --inference-concurrency N
                               images decoded and embedded at once, 1 to {InferenceOptions.MaxConcurrency} (default:
                               $MEDSEARCH_INFERENCE_CONCURRENCY, else half the cores, at least 1)
          --inference-queue N  requests that may wait for an embedding slot, 0 to {InferenceOptions.MaxQueue}; beyond that a request
                               gets RESOURCE_EXHAUSTED with a `{InferenceGate.RetryAfterTrailer}` trailer (default:
                               $MEDSEARCH_INFERENCE_QUEUE, else {new InferenceOptions().Queue})

        cluster (docs/scaling.md): instead of --data, join a sharded cluster as an Orleans silo that owns its share of
        the shards and answers the same API from all of them (queries fan out, writes go to the study's shard):
          --cluster DIR        the cluster storage, a directory every silo reaches (shared volume): cluster.json,
                               one data directory per shard; a silo that takes a shard over recovers it from there
          --shards N           shards to create the cluster with (first start only; fixed afterwards)
          --silo-port P        this silo's silo-to-silo port (default {ClusterOptions.DefaultSiloPort})
          --gateway-port P     this silo's Orleans client port (default {ClusterOptions.DefaultGatewayPort})
          --cluster-primary E  localhost clustering: the first silo's HOST:PORT (its --silo-port), given on every
                               other silo; the first silo runs without it
          --cluster-id ID      silos with the same id form one cluster (default medsearch)
        {EncoderArguments.ModelAndDeviceHelp}
        {EncoderArguments.VolumeHelp}
        """;

    private static readonly (string Option, string? Environment)[] Settings =
    [
        ("--data", null), ("--cluster", null), ("--shards", null), ("--silo-port", null), ("--gateway-port", null), ("--cluster-primary", null),
        ("--cluster-id", null), ("--urls", null), ("--http1-urls", null), ("--log-format", null), ("--cors-origins", null),
        ("--metrics-urls", ServerOptions.MetricsUrlsEnvironmentVariable),
        ("--keys", ServerOptions.KeysEnvironmentVariable),
        ("--tls-cert", ServerOptions.TlsCertificateEnvironmentVariable),
        ("--tls-key", ServerOptions.TlsKeyEnvironmentVariable),
        ("--tls-client-ca", ServerOptions.TlsClientCaEnvironmentVariable),
        ("--audit-file", ServerOptions.AuditFileEnvironmentVariable),
        ("--max-request-mb", ServerOptions.MaxRequestMbEnvironmentVariable),
        ("--request-memory-mb", ServerOptions.RequestMemoryMbEnvironmentVariable),
        ("--max-k", ServerOptions.MaxKEnvironmentVariable),
        ("--inference-concurrency", ServerOptions.InferenceConcurrencyEnvironmentVariable),
        ("--inference-queue", ServerOptions.InferenceQueueEnvironmentVariable),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        var line = Parse(args);
        if (line.Help) { Console.Out.Write(Help); return Program.Ok; }
        var options = Options(line);
        // With --log-format json every console line is a JSON object, the command's own start-up lines too: a log
        // collector reading the console would otherwise meet plain text between the host's JSON lines.
        using var jsonLogs = options.JsonLogs ? LoggerFactory.Create(logging => logging.AddJsonConsole(MedSearchServer.JsonLogFormat)) : null;
        var serveLog = jsonLogs?.CreateLogger("MedSearch.Cli.Serve");
        void Say(string message)
        {
            if (serveLog is null) Console.Out.WriteLine(message);
            else serveLog.LogInformation("{Message}", message);
        }
        Say(options.Cluster is { } cluster
            ? $"cluster storage: {cluster.StoragePath}; silo port {cluster.SiloPort}, gateway port {cluster.GatewayPort}{(cluster.Primary is { } p ? $", joining {p}" : ", primary silo")}"
            : $"data directory: {options.DataPath}");
        WebApplication built;
        try
        {
            built = MedSearchServer.Build(options, Say);
        }
        catch (ServerOptionsException e)
        {
            throw new UsageException(e.Message);
        }
        await using var app = built;
        await app.StartAsync();
        var space = app.Services.GetRequiredService<ICaseSpace>();
        var listeners = app.Services.GetRequiredService<Listeners>();
        Say($"model: {space.ModelId}; {await space.CountAsync(CancellationToken.None):N0} cases; listening on {string.Join(", ", listeners.Urls(ListenerRole.Grpc).Concat(listeners.Urls(ListenerRole.Http1)))}");
        var page = listeners.Urls(ListenerRole.Http1).Concat(options.TlsCertificatePath is null ? [] : listeners.Urls(ListenerRole.Grpc)).FirstOrDefault();
        if (page is not null) Say($"search page: {page}/");
        if (listeners.Urls(ListenerRole.Metrics) is { Count: > 0 } metrics)
            Say($"metrics: {string.Join(", ", metrics.Select(url => url + "/metrics"))}");
        await app.WaitForShutdownAsync();
        return Program.Ok;
    }

    /// <summary>The verb's command line: its options, checked against the ones it declares.</summary>
    public static CommandLine Parse(string[] args) =>
        CommandLine.Parse(args, Settings.Select(s => s.Option).Append(EncoderArguments.Model).Append(EncoderArguments.Device).Concat(EncoderArguments.VolumeOptions).ToHashSet(), new HashSet<string>());

    /// <summary>The server's settings from the options, then their environment variables, then the defaults.</summary>
    /// <exception cref="UsageException">A value that cannot work; the message names the option (and the variable it came from).</exception>
    public static ServerOptions Options(CommandLine line)
    {
        if (line.Positional.Count != 0) throw new UsageException($"takes no positional arguments, got `{line.Positional[0]}`");

        string? Setting(string option) => Engine.Setting.From(line.Get(option), Settings.Single(s => s.Option == option).Environment);
        int? Number(string option, int min, int max) => ServeCommand.Number(option, line.Get(option), Settings.Single(s => s.Option == option).Environment, min, max);
        var defaults = new InferenceOptions();

        return new ServerOptions
        {
            DataPath = DataDirectory.Resolve(line.Get("--data")),
            Urls = line.Get("--urls") ?? ServerOptions.DefaultUrls,
            Http1Urls = Setting("--http1-urls") ?? (Setting("--tls-cert") is null && line.Get("--urls") is null ? ServerOptions.DefaultPageUrls : null),
            MetricsUrls = Setting("--metrics-urls"),
            CorsOrigins = Setting("--cors-origins"),
            KeysPath = Setting("--keys"),
            TlsCertificatePath = Setting("--tls-cert"),
            TlsKeyPath = Setting("--tls-key"),
            TlsClientCaPath = Setting("--tls-client-ca"),
            AuditPath = Setting("--audit-file"),
            JsonLogs = (line.Get("--log-format") ?? "text") switch
            {
                "text" => false,
                "json" => true,
                var other => throw new UsageException($"--log-format must be text or json, got `{other}`"),
            },
            Collection = EncoderArguments.Options(line) with
            {
                MaxNeighbours = Number("--max-k", 1, CollectionOptions.MaxNeighboursLimit) ?? CollectionOptions.MaxNeighboursLimit,
            },
            Cluster = ClusterOf(line),
            MaxRequestBytes = (Number("--max-request-mb", 1, ServerOptions.MaxRequestMbLimit) ?? ServerOptions.DefaultMaxRequestMb) * 1024 * 1024,
            RequestMemoryBytes = Number("--request-memory-mb", 1, ServerOptions.RequestMemoryMbLimit) * 1024L * 1024,
            Inference = new InferenceOptions
            {
                Concurrency = Number("--inference-concurrency", 1, InferenceOptions.MaxConcurrency) ?? defaults.Concurrency,
                Queue = Number("--inference-queue", 0, InferenceOptions.MaxQueue) ?? defaults.Queue,
            },
        };
    }

    /// <summary>
    /// A whole-number option from <paramref name="min"/> to <paramref name="max"/>: its value, else its environment
    /// variable's, else null.
    /// </summary>
    private static int? Number(string option, string? given, string? environment, int min, int max)
    {
        if (Engine.Setting.From(given, environment) is not { } text) return null;
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) && value >= min && value <= max)
            return value;
        var source = string.IsNullOrWhiteSpace(given) ? $"${environment} (for {option})" : option;
        throw new UsageException($"{source} must be a whole number from {min} to {max}, got `{text}`");
    }

    private static ClusterOptions? ClusterOf(CommandLine line)
    {
        if (line.Get("--cluster") is not { } storage)
        {
            foreach (var option in new[] { "--shards", "--silo-port", "--gateway-port", "--cluster-primary", "--cluster-id" })
                if (line.Get(option) is not null) throw new UsageException($"{option} is a cluster setting; give --cluster DIR too");
            return null;
        }
        if (line.Get("--data") is not null) throw new UsageException("--data and --cluster: a cluster keeps its shards under --cluster DIR; give one of them");
        int? Number(string option, int min, int max) => ServeCommand.Number(option, line.Get(option), null, min, max);
        System.Net.IPEndPoint? primary = null;
        if (line.Get("--cluster-primary") is { } endpoint)
        {
            var text = endpoint.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase) ? "127.0.0.1" + endpoint["localhost".Length..] : endpoint;
            if (!System.Net.IPEndPoint.TryParse(text, out primary) || primary.Port == 0)
                throw new UsageException($"--cluster-primary must be HOST:PORT with an IP address (or localhost), got `{endpoint}`");
        }
        return new ClusterOptions
        {
            StoragePath = Path.GetFullPath(storage),
            Shards = Number("--shards", 1, ClusterLayout.MaxShards),
            SiloPort = Number("--silo-port", 1, 65535) ?? ClusterOptions.DefaultSiloPort,
            GatewayPort = Number("--gateway-port", 1, 65535) ?? ClusterOptions.DefaultGatewayPort,
            Primary = primary,
            ClusterId = line.Get("--cluster-id") ?? "medsearch",
        };
    }
}
