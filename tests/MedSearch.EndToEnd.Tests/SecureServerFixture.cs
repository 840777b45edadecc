using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Server;
using MedSearch.Server.Security;
using MedSearch.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using SkiaSharp;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// A small collection that needs nothing from ../shared: four generated PNGs indexed with the <see cref="TinyConvModel"/>
/// on the CPU, an API keys file with a read and a write key, and certificates made here: a server certificate for
/// 127.0.0.1, and a client authority with a client certificate it issued (plus a stranger's, for refusals).
/// </summary>
public sealed class SecureServerFixture : IAsyncLifetime
{
    public const int CaseCount = 4;

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "medsearch-secure-" + Guid.NewGuid().ToString("N")[..8]);
    public string Data => Path.Combine(Root, "data");
    public string Images => Path.Combine(Root, "images");
    public string KeysPath => Path.Combine(Root, "keys.json");
    public string ServerCertPath => Path.Combine(Root, "server.crt");
    public string ServerKeyPath => Path.Combine(Root, "server.key");
    public string ClientCaPath => Path.Combine(Root, "client-ca.crt");

    public string ReadSecret { get; private set; } = "";
    public string WriteSecret { get; private set; } = "";
    public X509Certificate2 ServerCertificate { get; private set; } = null!;
    public X509Certificate2 ClientCertificate { get; private set; } = null!;
    public X509Certificate2 StrangerCertificate { get; private set; } = null!;
    private CollectionOptions _collection = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Images);
        _collection = new CollectionOptions { ModelPath = TinyConvModel.Write(Path.Combine(Root, "model")), Encoder = new EncoderOptions { Device = EncoderDevice.Cpu } };
        for (int i = 0; i < CaseCount; i++) File.WriteAllBytes(Path.Combine(Images, $"{i}.png"), Png(i));
        File.WriteAllText(Path.Combine(Images, "labels.csv"), "path,labels\n0.png,benign\n1.png,benign\n2.png,malignant\n3.png,malignant\n");
        using (var collection = Collection.Open(Data, _collection))
            await IndexJob.RunAsync(collection, new IndexJobOptions { Root = Images, LabelsPath = Path.Combine(Images, "labels.csv") });

        var keys = ApiKeyStore.Load(KeysPath, mustExist: false);
        ReadSecret = keys.Add("viewer", Permission.Read);
        WriteSecret = keys.Add("ingester", Permission.Write);
        keys.Save();

        ServerCertificate = SelfSigned("CN=medsearch-test-server", serverAuth: true);
        File.WriteAllText(ServerCertPath, ServerCertificate.ExportCertificatePem());
        File.WriteAllText(ServerKeyPath, ServerCertificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

        using var authority = SelfSigned("CN=medsearch-test-client-ca", serverAuth: false, authority: true);
        File.WriteAllText(ClientCaPath, authority.ExportCertificatePem());
        ClientCertificate = Issue(authority, "CN=medsearch-test-client");
        StrangerCertificate = SelfSigned("CN=medsearch-test-stranger", serverAuth: false);
    }

    public byte[] Png(int i)
    {
        using var bitmap = new SKBitmap(64, 64, SKColorType.Gray8, SKAlphaType.Opaque);
        for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            bitmap.SetPixel(x, y, new SKColor((byte)((x * (i + 1) + y * (4 - i)) % 256), 0, 0));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>
    /// Builds and starts the real server over the fixture's collection; <paramref name="configure"/> sets the rest, and
    /// <paramref name="wrap"/>, when given, wraps the collection's case space (to hold a call at a known point, say).
    /// </summary>
    public async Task<SecureServer> StartAsync(Func<ServerOptions, ServerOptions>? configure = null, List<string>? log = null,
        Func<ICaseSpace, ICaseSpace>? wrap = null)
    {
        var options = new ServerOptions { DataPath = Data, Urls = "http://127.0.0.1:0", Collection = _collection };
        options = configure?.Invoke(options) ?? options;
        var app = wrap is null
            ? MedSearchServer.Build(options, log is null ? null : log.Add)
            : MedSearchServer.Build(options, wrap(new LocalCaseSpace(Collection.Open(options.DataPath, options.Collection))), log is null ? null : log.Add);
        await app.StartAsync();
        return new SecureServer(app);
    }

    /// <summary>Options with every security setting filled from the fixture's files.</summary>
    public ServerOptions Secured(ServerOptions options, string urls, bool mutualTls = false, string? http1Urls = null, string? metricsUrls = null, string? auditPath = null) => new()
    {
        DataPath = options.DataPath,
        Collection = options.Collection,
        Urls = urls,
        Http1Urls = http1Urls,
        MetricsUrls = metricsUrls,
        KeysPath = KeysPath,
        TlsCertificatePath = urls.Contains("https://") ? ServerCertPath : null,
        TlsKeyPath = urls.Contains("https://") ? ServerKeyPath : null,
        TlsClientCaPath = mutualTls ? ClientCaPath : null,
        AuditPath = auditPath,
    };

    private static X509Certificate2 SelfSigned(string subject, bool serverAuth, bool authority = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = Request(subject, key, serverAuth, authority);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    private static X509Certificate2 Issue(X509Certificate2 authority, string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = Request(subject, key, serverAuth: false, authority: false);
        using var issued = request.Create(authority, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(8));
        return issued.CopyWithPrivateKey(key);
    }

    private static CertificateRequest Request(string subject, ECDsa key, bool serverAuth, bool authority)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(authority, false, 0, critical: true));
        if (authority)
        {
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
            return request;
        }
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], critical: false));
        if (serverAuth)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(System.Net.IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }
        return request;
    }

    public Task DisposeAsync()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}

public sealed class SecureServer(WebApplication app) : IAsyncDisposable
{
    private readonly Listeners _listeners = app.Services.GetRequiredService<Listeners>();

    public string Grpc => _listeners.Urls(ListenerRole.Grpc).Single();
    public string Http1 => _listeners.Urls(ListenerRole.Http1).Single();
    public string Metrics => _listeners.Urls(ListenerRole.Metrics).Single();
    public IConfigurationRoot Configuration => (IConfigurationRoot)app.Configuration;
    public RequestMemory RequestMemory => app.Services.GetRequiredService<RequestMemory>();

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
