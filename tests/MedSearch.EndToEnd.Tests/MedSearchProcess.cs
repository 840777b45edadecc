using System.Diagnostics;

namespace MedSearch.EndToEnd.Tests;

public sealed record CliResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
}

/// <summary>Runs the real `medsearch` executable (built next to the tests) as a child process.</summary>
public static class MedSearchProcess
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "medsearch.dll");

    public static async Task<CliResult> RunAsync(TimeSpan timeout, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Dll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove("MEDSEARCH_DATA");
        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"medsearch {string.Join(' ', args)} did not finish in {timeout}");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
