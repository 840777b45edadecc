namespace MedSearch.Server.Security;

/// <summary>What a call needs (None: open) and what an API key grants (Read or Write); Write includes Read.</summary>
public enum Permission
{
    None = 0,
    Read = 1,
    Write = 2,
}

/// <summary>
/// The one table of which permission each gRPC method needs when API keys are configured. It applies to gRPC,
/// gRPC-Web and JSON-transcoded calls alike (they share the method names). A method missing here needs Write, so
/// that a method added to the contract is never open by accident.
/// </summary>
public static class MethodPermissions
{
    private static readonly Dictionary<string, Permission> Methods = new(StringComparer.Ordinal)
    {
        ["/medsearch.v1.SearchService/Search"] = Permission.Read,
        ["/medsearch.v1.SearchService/Classify"] = Permission.Read,
        ["/medsearch.v1.CaseService/Get"] = Permission.Read,
        ["/medsearch.v1.CollectionService/Stats"] = Permission.Read,
        ["/medsearch.v1.CollectionService/ListLabels"] = Permission.Read,
        ["/medsearch.v1.CaseService/Ingest"] = Permission.Write,
        ["/medsearch.v1.CaseService/UpdateLabels"] = Permission.Write,
        ["/medsearch.v1.CaseService/Delete"] = Permission.Write,
    };

    /// <summary>Whole services open without a key: load balancers probe health, and reflection only describes the contract.</summary>
    private static readonly HashSet<string> OpenServices = new(StringComparer.Ordinal)
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    };

    /// <param name="method">The full method name as gRPC gives it: "/package.Service/Method".</param>
    public static Permission Required(string method)
    {
        if (Methods.TryGetValue(method, out var permission)) return permission;
        int slash = method.LastIndexOf('/');
        return slash > 1 && OpenServices.Contains(method[1..slash]) ? Permission.None : Permission.Write;
    }

    public static bool Grants(this Permission granted, Permission required) => granted >= required;

    public static string Name(this Permission permission) => permission.ToString().ToLowerInvariant();

    public static Permission Parse(string text, string what) => text switch
    {
        "read" => Permission.Read,
        "write" => Permission.Write,
        _ => throw new FormatException($"{what} must be `read` or `write`, got `{text}`"),
    };
}
