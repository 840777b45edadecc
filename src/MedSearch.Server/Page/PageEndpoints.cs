using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedSearch.Server.Page;

/// <summary>
/// The search page at <c>/</c>: static files embedded in the server (hospital networks are closed, so nothing is
/// fetched from elsewhere), calling the public JSON routes like any other client. The page holds no patient data,
/// so it is served without a key; the API calls it makes are authorised as usual.
/// </summary>
public static class PageEndpoints
{
    // Nothing but this origin: no inline script or style, images only from here or the data: URIs of thumbnails.
    private const string ContentSecurityPolicy =
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    private static readonly (string Route, string Resource, string ContentType)[] Files =
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "app.css", "text/css; charset=utf-8"),
    ];

    public static void MapSearchPage(this IEndpointRouteBuilder endpoints)
    {
        var assembly = typeof(PageEndpoints).Assembly;
        foreach (var (route, resource, contentType) in Files)
        {
            var bytes = Read(assembly, resource);
            endpoints.MapGet(route, (HttpContext context) =>
            {
                var headers = context.Response.Headers;
                headers.ContentSecurityPolicy = ContentSecurityPolicy;
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "no-referrer";
                headers.CacheControl = "no-cache";
                return Results.Bytes(bytes, contentType);
            });
        }
    }

    private static byte[] Read(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream("page/" + name)
            ?? throw new InvalidOperationException($"the search page's {name} is missing from {assembly.GetName().Name}");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}
