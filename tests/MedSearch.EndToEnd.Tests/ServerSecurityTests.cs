using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Grpc.Net.Client.Web;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Server.Security;
using Microsoft.Extensions.Configuration;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The server's edge on a real loopback port: API keys and the permission table, TLS and mutual TLS, the loopback-only
/// default, the audit log, /metrics, gRPC-Web and JSON transcoding.
/// </summary>
public sealed class ServerSecurityTests(SecureServerFixture fixture) : IClassFixture<SecureServerFixture>
{
    private static Metadata Bearer(string secret) => new() { { "authorization", $"Bearer {secret}" } };

    private SocketsHttpHandler Handler(X509Certificate2? clientCertificate = null)
    {
        var handler = new SocketsHttpHandler();
        // Trust exactly the fixture's server certificate, as a client pinning it would.
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            certificate is not null && certificate.GetCertHashString() == fixture.ServerCertificate.Thumbprint;
        if (clientCertificate is not null) handler.SslOptions.ClientCertificates = [clientCertificate];
        return handler;
    }

    private GrpcChannel Channel(string address, HttpMessageHandler? handler = null) =>
        GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler ?? Handler() });

    /// <summary>gRPC-Web over HTTP/1.1 exactly, as a browser without HTTP/2 would call.</summary>
    private static GrpcChannel WebChannel(string address, GrpcWebMode mode, HttpMessageHandler inner) =>
        GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = new GrpcWebHandler(mode, inner),
            HttpVersion = HttpVersion.Version11,
            HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        });

    private static RpcException Refused(Action call) => Assert.Throws<RpcException>(call);

    [Fact]
    public void Permission_table_names_every_method_of_the_contract()
    {
        var read = new[] { "Search", "Classify", "Get", "Stats", "ListLabels" };
        foreach (var service in new[] { SearchService.Descriptor, CaseService.Descriptor, CollectionService.Descriptor })
        foreach (var method in service.Methods)
        {
            var expected = read.Contains(method.Name) ? Permission.Read : Permission.Write;
            Assert.Equal(expected, MethodPermissions.Required($"/{service.FullName}/{method.Name}"));
        }
        Assert.Equal(Permission.Write, MethodPermissions.Required("/medsearch.v1.CaseService/SomethingNew"));
        Assert.Equal(Permission.Write, MethodPermissions.Required("/medsearch.v2.SearchService/Search"));
        Assert.Equal(Permission.None, MethodPermissions.Required("/grpc.health.v1.Health/Check"));
        Assert.Equal(Permission.None, MethodPermissions.Required("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
    }

    [Fact]
    public async Task No_key_wrong_key_and_read_key_on_write_methods_are_refused()
    {
        await using var server = await fixture.StartAsync(o => fixture.Secured(o, "http://127.0.0.1:0"));
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        var collection = new CollectionService.CollectionServiceClient(channel);
        var cases = new CaseService.CaseServiceClient(channel);

        var none = Refused(() => collection.Stats(new StatsRequest()));
        Assert.Equal(StatusCode.Unauthenticated, none.StatusCode);

        const string wrong = "msk_not-a-key-of-this-server-0123456789abcdefghij";
        var unknown = Refused(() => collection.Stats(new StatsRequest(), Bearer(wrong)));
        Assert.Equal(StatusCode.Unauthenticated, unknown.StatusCode);
        Assert.DoesNotContain(wrong, unknown.Status.Detail);
        var notBearer = Refused(() => collection.Stats(new StatsRequest(), new Metadata { { "authorization", fixture.ReadSecret } }));
        Assert.Equal(StatusCode.Unauthenticated, notBearer.StatusCode);

        Assert.Equal(SecureServerFixture.CaseCount, collection.Stats(new StatsRequest(), Bearer(fixture.ReadSecret)).Cases);
        Assert.Equal(SecureServerFixture.CaseCount, collection.Stats(new StatsRequest(), Bearer(fixture.WriteSecret)).Cases);

        var delete = Refused(() => cases.Delete(new DeleteRequest { CaseId = "no-such-case" }, Bearer(fixture.ReadSecret)));
        Assert.Equal(StatusCode.PermissionDenied, delete.StatusCode);
        Assert.Contains("viewer", delete.Status.Detail);
        Assert.DoesNotContain(fixture.ReadSecret, delete.Status.Detail);
        var relabel = Refused(() => cases.UpdateLabels(new UpdateLabelsRequest { CaseId = "no-such-case" }, Bearer(fixture.ReadSecret)));
        Assert.Equal(StatusCode.PermissionDenied, relabel.StatusCode);
        // A streaming method goes through the same check before any message is read.
        using (var ingest = cases.Ingest(Bearer(fixture.ReadSecret)))
        {
            var denied = await Assert.ThrowsAsync<RpcException>(async () => await ingest.ResponseStream.MoveNext());
            Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        }

        Assert.Equal(0, cases.Delete(new DeleteRequest { CaseId = "no-such-case" }, Bearer(fixture.WriteSecret)).Deleted);
        // Health stays open for load balancers.
        var health = new Health.HealthClient(channel).Check(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task Without_keys_the_server_is_loopback_only_and_says_so()
    {
        var log = new List<string>();
        await using (var server = await fixture.StartAsync(log: log))
        {
            Assert.Contains(log, line => line.Contains("unauthenticated") && line.Contains("loopback only"));
            using var channel = GrpcChannel.ForAddress(server.Grpc);
            Assert.Equal(SecureServerFixture.CaseCount, new CollectionService.CollectionServiceClient(channel).Stats(new StatsRequest()).Cases);
        }

        var exposed = Assert.Throws<ServerOptionsException>(() =>
            MedSearchServer.Build(new ServerOptions { DataPath = fixture.Data, Urls = "http://0.0.0.0:0" }));
        Assert.Contains("--urls http://0.0.0.0:0", exposed.Message);
        Assert.Contains("--keys", exposed.Message);
        var exposedHttp1 = Assert.Throws<ServerOptionsException>(() =>
            MedSearchServer.Build(new ServerOptions { DataPath = fixture.Data, Http1Urls = "http://*:0" }));
        Assert.Contains("--http1-urls", exposedHttp1.Message);
        var noCertificate = Assert.Throws<ServerOptionsException>(() =>
            MedSearchServer.Build(new ServerOptions { DataPath = fixture.Data, Urls = "https://127.0.0.1:0" }));
        Assert.Contains("--tls-cert", noCertificate.Message);
    }

    [Fact]
    public async Task Host_watches_no_settings_files()
    {
        // Settings come from ServerOptions alone: a watched content root would turn every write below it into work.
        await using var server = await fixture.StartAsync();
        var files = server.Configuration.Providers.OfType<FileConfigurationProvider>().ToList();
        Assert.NotEmpty(files);
        Assert.All(files, provider => Assert.False(provider.Source.ReloadOnChange, $"{provider.Source.Path} is watched for changes"));
    }

    [Fact]
    public async Task Keys_cli_prints_the_secret_once_and_stores_only_its_hash()
    {
        var path = Path.Combine(fixture.Root, "cli-keys.json");
        var added = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "keys", "add", "--keys", path, "--name", "pacs-viewer", "--permission", "read");
        Assert.True(added.ExitCode == 0, added.ToString());
        var secret = added.Output.Trim();
        Assert.StartsWith(ApiKeyStore.SecretPrefix, secret);
        var stored = File.ReadAllText(path);
        Assert.DoesNotContain(secret, stored);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret))), stored);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal("pacs-viewer", ApiKeyStore.Load(path).Authenticate(secret)?.Id);

        var again = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "keys", "add", "--keys", path, "--name", "pacs-viewer", "--permission", "write");
        Assert.Equal(2, again.ExitCode);
        var badPermission = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "keys", "add", "--keys", path, "--name", "x", "--permission", "admin");
        Assert.Equal(2, badPermission.ExitCode);
        Assert.Contains("--permission must be `read` or `write`", badPermission.Error);

        var list = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "keys", "list", "--keys", path);
        Assert.Contains("pacs-viewer", list.Output);
        Assert.Contains("read", list.Output);
        Assert.DoesNotContain(secret, list.Output);

        var removed = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "keys", "remove", "--keys", path, "--name", "pacs-viewer");
        Assert.True(removed.ExitCode == 0, removed.ToString());
        Assert.Null(ApiKeyStore.Load(path).Authenticate(secret));
    }

    [Fact]
    public async Task Tls_serves_grpc_grpc_web_and_json_on_one_port()
    {
        var log = new List<string>();
        await using var server = await fixture.StartAsync(o => fixture.Secured(o, "https://127.0.0.1:0"), log);
        Assert.StartsWith("https://", server.Grpc);
        Assert.Contains(log, line => line.StartsWith("TLS: CN=medsearch-test-server"));

        using var channel = Channel(server.Grpc);
        var stats = new CollectionService.CollectionServiceClient(channel).Stats(new StatsRequest(), Bearer(fixture.ReadSecret));
        Assert.Equal(SecureServerFixture.CaseCount, stats.Cases);

        using var webChannel = WebChannel(server.Grpc, GrpcWebMode.GrpcWeb, Handler());
        var search = new SearchService.SearchServiceClient(webChannel).Search(
            new SearchRequest { Image = ByteString.CopyFrom(fixture.Png(1)), K = 2 }, Bearer(fixture.ReadSecret));
        Assert.Equal(2, search.Neighbours.Count);
        Assert.Equal("file:1.png", search.Neighbours[0].Key);

        using var http = new HttpClient(Handler()) { BaseAddress = new Uri(server.Grpc), DefaultRequestVersion = HttpVersion.Version11 };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/stats");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fixture.ReadSecret);
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Version(1, 1), response.Version);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(SecureServerFixture.CaseCount.ToString(), json.RootElement.GetProperty("cases").ToString());
    }

    [Fact]
    public async Task Mutual_tls_refuses_clients_without_a_certificate_of_the_authority()
    {
        var log = new List<string>();
        await using var server = await fixture.StartAsync(o => fixture.Secured(o, "https://127.0.0.1:0", mutualTls: true), log);
        Assert.Contains(log, line => line.Contains("client certificates required"));

        using (var channel = Channel(server.Grpc, Handler(fixture.ClientCertificate)))
        {
            var stats = new CollectionService.CollectionServiceClient(channel).Stats(new StatsRequest(), Bearer(fixture.ReadSecret));
            Assert.Equal(SecureServerFixture.CaseCount, stats.Cases);
        }
        foreach (var certificate in new[] { null, fixture.StrangerCertificate })
        {
            using var channel = Channel(server.Grpc, Handler(certificate));
            var refused = Refused(() => new CollectionService.CollectionServiceClient(channel).Stats(new StatsRequest(), Bearer(fixture.ReadSecret)));
            // With TLS 1.3 the client may finish its side of the handshake before the server refuses the certificate,
            // so the refusal surfaces either as a failed connection or as a connection reset under the first call.
            Assert.Contains(refused.StatusCode, new[] { StatusCode.Unavailable, StatusCode.Internal });
        }
    }

    [Fact]
    public async Task Http1_listener_serves_grpc_web_and_json_with_keys()
    {
        await using var server = await fixture.StartAsync(o => fixture.Secured(o, "http://127.0.0.1:0", http1Urls: "http://127.0.0.1:0"));
        Assert.StartsWith("http://127.0.0.1:", server.Http1);

        using var webChannel = WebChannel(server.Http1, GrpcWebMode.GrpcWebText, new SocketsHttpHandler());
        var collection = new CollectionService.CollectionServiceClient(webChannel);
        Assert.Equal(SecureServerFixture.CaseCount, collection.Stats(new StatsRequest(), Bearer(fixture.ReadSecret)).Cases);
        Assert.Equal(StatusCode.Unauthenticated, Refused(() => collection.Stats(new StatsRequest())).StatusCode);

        using var http = new HttpClient { BaseAddress = new Uri(server.Http1) };
        using (var anonymous = await http.GetAsync("/v1/stats"))
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", fixture.ReadSecret);
        var body = JsonSerializer.Serialize(new { image = Convert.ToBase64String(fixture.Png(2)), k = 3 });
        using var search = await http.PostAsync("/v1/search", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        Assert.Equal("application/json", search.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await search.Content.ReadAsStringAsync());
        var neighbours = json.RootElement.GetProperty("neighbours");
        Assert.Equal(3, neighbours.GetArrayLength());
        Assert.Equal("file:2.png", neighbours[0].GetProperty("key").GetString());

        using var labels = await http.GetAsync("/v1/labels");
        Assert.Equal(HttpStatusCode.OK, labels.StatusCode);
        using var delete = await http.PostAsync("/v1/delete", new StringContent("""{"caseId":"no-such-case"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Forbidden, delete.StatusCode);
    }

    /// <summary>Revoking a leaked key must not wait for a restart; a broken keys file keeps the keys last read.</summary>
    [Fact]
    public async Task Keys_added_or_removed_while_serving_take_effect_and_a_broken_file_changes_nothing()
    {
        var keysPath = Path.Combine(fixture.Root, $"keys-{Guid.NewGuid():N}.json");
        File.Copy(fixture.KeysPath, keysPath);
        await using var server = await fixture.StartAsync(o => fixture.Secured(o, "http://127.0.0.1:0") with { KeysPath = keysPath });
        using var channel = Channel(server.Grpc);
        var collection = new CollectionService.CollectionServiceClient(channel);
        Assert.Equal(SecureServerFixture.CaseCount, collection.Stats(new StatsRequest(), Bearer(fixture.ReadSecret)).Cases);

        var keys = ApiKeyStore.Load(keysPath);
        Assert.True(keys.Remove("viewer"));
        var added = keys.Add("second-viewer", Permission.Read);
        keys.Save();
        await WaitUntil(() => Refused(() => collection.Stats(new StatsRequest(), Bearer(fixture.ReadSecret))).StatusCode == StatusCode.Unauthenticated);
        Assert.Equal(SecureServerFixture.CaseCount, collection.Stats(new StatsRequest(), Bearer(added)).Cases);

        File.WriteAllText(keysPath, "{ not json");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(SecureServerFixture.CaseCount, collection.Stats(new StatsRequest(), Bearer(added)).Cases);
        Assert.Equal(StatusCode.Unauthenticated, Refused(() => collection.Stats(new StatsRequest(), Bearer(fixture.ReadSecret))).StatusCode);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            bool met;
            try { met = condition(); }
            catch (Exception e) when (e is RpcException or Xunit.Sdk.XunitException) { met = false; }
            if (met) return;
            Assert.True(DateTime.UtcNow < deadline, "the server did not pick up the changed keys file within 10 s");
            await Task.Delay(200);
        }
    }

    /// <summary>A viewer served from another origin may call the JSON routes when its origin is listed, and only then.</summary>
    [Fact]
    public async Task Only_listed_origins_get_cross_origin_access()
    {
        await using var server = await fixture.StartAsync(o => fixture.Secured(o, "http://127.0.0.1:0", http1Urls: "http://127.0.0.1:0")
            with { CorsOrigins = "https://viewer.example.org" });
        using var http = new HttpClient { BaseAddress = new Uri(server.Http1) };
        async Task<HttpResponseMessage> Preflight(string origin)
        {
            var request = new HttpRequestMessage(HttpMethod.Options, "/v1/search");
            request.Headers.Add("Origin", origin);
            request.Headers.Add("Access-Control-Request-Method", "POST");
            request.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
            return await http.SendAsync(request);
        }
        using var allowed = await Preflight("https://viewer.example.org");
        Assert.Equal("https://viewer.example.org", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        using var other = await Preflight("https://elsewhere.example.com");
        Assert.False(other.Headers.Contains("Access-Control-Allow-Origin"));

        var star = Assert.Throws<ServerOptionsException>(() =>
            MedSearchServer.Build(fixture.Secured(new ServerOptions { DataPath = fixture.Data }, "http://127.0.0.1:0") with { CorsOrigins = "*" }));
        Assert.Contains("--cors-origins", star.Message);
    }

    [Fact]
    public async Task Audit_log_has_one_line_per_call_with_caller_method_status_and_counts_only()
    {
        var auditPath = Path.Combine(fixture.Root, $"audit-{Guid.NewGuid():N}.jsonl");
        const string patientId = "PATIENT-0042-SECRET";
        await using (var server = await fixture.StartAsync(o => fixture.Secured(o, "http://127.0.0.1:0", auditPath: auditPath)))
        {
            using var channel = GrpcChannel.ForAddress(server.Grpc);
            var search = new SearchService.SearchServiceClient(channel);
            var cases = new CaseService.CaseServiceClient(channel);
            search.Search(new SearchRequest { Image = ByteString.CopyFrom(fixture.Png(0)), ImageName = "scan-of-" + patientId, K = 3 }, Bearer(fixture.ReadSecret));
            Refused(() => cases.Delete(new DeleteRequest { PatientId = patientId }, Bearer(fixture.ReadSecret)));
            cases.Delete(new DeleteRequest { PatientId = patientId }, Bearer(fixture.WriteSecret));
            Refused(() => new CollectionService.CollectionServiceClient(channel).Stats(new StatsRequest()));
        }

        var text = File.ReadAllText(auditPath);
        Assert.DoesNotContain(patientId, text);
        Assert.DoesNotContain(fixture.ReadSecret, text);
        Assert.DoesNotContain(fixture.WriteSecret, text);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(
            ["viewer /medsearch.v1.SearchService/Search OK", "viewer /medsearch.v1.CaseService/Delete PermissionDenied",
             "ingester /medsearch.v1.CaseService/Delete OK", "anonymous /medsearch.v1.CollectionService/Stats Unauthenticated"],
            lines.Select(l => $"{l.GetProperty("caller").GetString()} {l.GetProperty("method").GetString()} {l.GetProperty("status").GetString()}"));
        Assert.Equal(3, lines[0].GetProperty("k").GetInt32());
        Assert.Equal(3, lines[0].GetProperty("neighbours").GetInt32());
        Assert.Equal(0, lines[2].GetProperty("deleted").GetInt32());
        Assert.All(lines, l => Assert.True(l.GetProperty("latency_ms").GetDouble() >= 0));
        Assert.All(lines, l => Assert.Equal(TimeSpan.Zero, l.GetProperty("time").GetDateTimeOffset().Offset));
    }

    [Fact]
    public async Task Metrics_listener_serves_request_metrics_and_nothing_else()
    {
        await using var server = await fixture.StartAsync(o => new ServerOptions
        {
            DataPath = o.DataPath, Collection = o.Collection, Urls = o.Urls, MetricsUrls = "http://127.0.0.1:0",
        });
        using (var channel = GrpcChannel.ForAddress(server.Grpc))
            new CollectionService.CollectionServiceClient(channel).Stats(new StatsRequest());

        using var http = new HttpClient { BaseAddress = new Uri(server.Metrics) };
        using var scrape = await http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
        var metrics = await scrape.Content.ReadAsStringAsync();
        Assert.Contains(metrics.Split('\n'), line => line.StartsWith("rpc_server_duration_milliseconds_count{")
            && line.Contains("rpc_method=\"Stats\"") && line.Contains("rpc_service=\"medsearch.v1.CollectionService\"") && line.Contains("rpc_grpc_status_code=\"0\""));

        using var api = await http.GetAsync("/v1/stats");
        Assert.Equal(HttpStatusCode.NotFound, api.StatusCode);
    }
}
