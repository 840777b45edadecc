using Xunit;

namespace MedSearch.Tests.Support;

/// <summary>
/// The datasets in ../shared (next to the repository). Under CI (CI=true) a missing folder is a failure:
/// a green run that silently skipped the real-data tests would prove nothing. Elsewhere those tests skip with
/// a message naming the folder.
/// </summary>
public static class SharedData
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string DatasetsPath => Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", "datasets"));

    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Full path of a file or folder under ../shared/datasets; throws under CI when it is missing.</summary>
    public static string Require(string relative)
    {
        var path = Path.Combine(DatasetsPath, relative);
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new InvalidOperationException($"shared test data {path} is missing (CI=true requires ../shared/datasets next to the repository)");
        return path;
    }

    /// <summary>Why a test needing <paramref name="relative"/> must skip here, or null when it can run.</summary>
    public static string? SkipReason(string relative)
    {
        var path = Path.Combine(DatasetsPath, relative);
        if (File.Exists(path) || Directory.Exists(path) || InCi) return null;
        return $"skipped: shared test data {path} is missing";
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MedSearch.sln"))) return dir.FullName;
        throw new InvalidOperationException($"MedSearch.sln not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>A fact that needs ../shared/datasets/&lt;path&gt;: skipped with the folder named when it is missing outside CI.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(string relativePath)
    {
        if (SharedData.SkipReason(relativePath) is { } reason) Skip = reason;
    }
}

/// <summary>A theory that needs ../shared/datasets/&lt;path&gt;: skipped with the folder named when it is missing outside CI.</summary>
public sealed class SharedDataTheoryAttribute : TheoryAttribute
{
    public SharedDataTheoryAttribute(string relativePath)
    {
        if (SharedData.SkipReason(relativePath) is { } reason) Skip = reason;
    }
}
