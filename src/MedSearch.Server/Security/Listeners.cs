using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace MedSearch.Server.Security;

public enum ListenerRole
{
    /// <summary>--urls: gRPC; h2c on http://, HTTP/1.1 and HTTP/2 on https://.</summary>
    Grpc,
    /// <summary>--http1-urls: the same services for HTTP/1.1-only callers (gRPC-Web, JSON).</summary>
    Http1,
    /// <summary>--metrics-urls: /metrics and nothing else.</summary>
    Metrics,
}

/// <summary>
/// Where the server listens and with which protocols, decided before anything binds: the URLs are checked against the
/// rules (https needs a certificate; only loopback without API keys), then bound on Kestrel one by one so that each
/// role gets its own protocols. After start, the bound ports (port 0 = any free one) tell the roles apart.
/// </summary>
public sealed class Listeners
{
    private readonly List<Planned> _planned;
    private readonly List<(Planned Plan, ListenOptions Options)> _bound = [];

    private sealed record Planned(ListenerRole Role, IPAddress Address, int Port, bool Https);

    private Listeners(List<Planned> planned) => _planned = planned;

    public static Listeners Plan(ServerOptions options, bool apiKeys, TlsSettings? tls)
    {
        var planned = new List<Planned>();
        Add(planned, ListenerRole.Grpc, "--urls", options.Urls, apiKeys, tls);
        Add(planned, ListenerRole.Http1, "--http1-urls", options.Http1Urls, apiKeys, tls);
        Add(planned, ListenerRole.Metrics, "--metrics-urls", options.MetricsUrls, apiKeys, tls);
        if (!planned.Any(p => p.Role == ListenerRole.Grpc)) throw new ServerOptionsException("--urls: at least one URL is needed");
        if (tls is not null && !planned.Any(p => p.Https))
            throw new ServerOptionsException("--tls-cert is set but no listener is https://: use https:// URLs in --urls");
        return new Listeners(planned);
    }

    private static void Add(List<Planned> planned, ListenerRole role, string option, string? urls, bool apiKeys, TlsSettings? tls)
    {
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            BindingAddress address;
            try { address = BindingAddress.Parse(url); }
            catch (FormatException) { throw new ServerOptionsException($"{option} {url}: not a URL like http://127.0.0.1:5080"); }
            bool https = address.Scheme switch
            {
                "http" => false,
                "https" => true,
                _ => throw new ServerOptionsException($"{option} {url}: the scheme must be http or https"),
            };
            if (address.PathBase.Length > 0) throw new ServerOptionsException($"{option} {url}: a path is not supported");
            var ip = address.Host switch
            {
                "localhost" => IPAddress.Loopback,
                "*" or "+" => IPAddress.Any,
                _ when IPAddress.TryParse(address.Host.Trim('[', ']'), out var parsed) => parsed,
                _ => throw new ServerOptionsException($"{option} {url}: the host must be an IP address, localhost or *"),
            };
            if (https && tls is null) throw new ServerOptionsException($"{option} {url}: https needs --tls-cert and --tls-key");
            if (role != ListenerRole.Metrics && !apiKeys && !IPAddress.IsLoopback(ip))
                throw new ServerOptionsException($"{option} {url}: not a loopback address, and without API keys (--keys FILE) anyone who reaches it could search and delete; set --keys or listen on 127.0.0.1");
            planned.Add(new Planned(role, ip, address.Port, https));
        }
    }

    public void Bind(KestrelServerOptions kestrel, TlsSettings? tls)
    {
        foreach (var plan in _planned)
        {
            kestrel.Listen(plan.Address, plan.Port, listen =>
            {
                // Cleartext HTTP/2 needs prior knowledge, which Kestrel offers only on HTTP/2-only endpoints; with TLS,
                // ALPN lets one port serve gRPC (HTTP/2) and gRPC-Web, JSON and scrapers (HTTP/1.1).
                listen.Protocols = plan.Role switch
                {
                    ListenerRole.Grpc => plan.Https ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http2,
                    ListenerRole.Http1 => HttpProtocols.Http1,
                    _ => plan.Https ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1,
                };
                if (plan.Https) listen.UseHttps(https => tls!.Configure(https));
                _bound.Add((plan, listen));
            });
        }
    }

    /// <summary>The bound URLs of a role, with the real ports; valid once the server has started.</summary>
    public IReadOnlyList<string> Urls(ListenerRole role) =>
        _bound.Where(b => b.Plan.Role == role).Select(b => Format(b.Plan.Https, b.Options.IPEndPoint!)).ToList();

    public bool IsMetricsConnection(HttpContext context) =>
        _bound.Any(b => b.Plan.Role == ListenerRole.Metrics && b.Options.IPEndPoint!.Port == context.Connection.LocalPort);

    private static string Format(bool https, IPEndPoint endPoint) =>
        $"{(https ? "https" : "http")}://{(endPoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]" : endPoint.Address)}:{endPoint.Port}";
}
