namespace MedSearch.Engine;

/// <summary>How every setting of a command is chosen: its command-line option, else its environment variable, else none.</summary>
public static class Setting
{
    public static string? From(string? option, string? environmentVariable) =>
        !string.IsNullOrWhiteSpace(option) ? option
        : environmentVariable is not null && Environment.GetEnvironmentVariable(environmentVariable) is { } value && !string.IsNullOrWhiteSpace(value) ? value
        : null;
}
