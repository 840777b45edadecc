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

    private static Process Start(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Dll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove("MEDSEARCH_DATA");
        return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
    }

    /// <summary>
    /// Starts medsearch, waits until <paramref name="ready"/> holds (polled), then <paramref name="delay"/> more, and
    /// SIGKILLs it; returns false if it had already exited.
    /// </summary>
    public static async Task<bool> KillWhenAsync(Func<bool> ready, TimeSpan delay, TimeSpan timeout, params string[] args)
    {
        using var process = Start(args);
        var drain = Task.WhenAll(process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
        var deadline = DateTime.UtcNow + timeout;
        while (!process.HasExited && !ready() && DateTime.UtcNow < deadline) await Task.Delay(50);
        await Task.Delay(delay);
        bool killed = !process.HasExited;
        // Process.Kill sends SIGKILL on Linux: no handler, no flush, like a power cut for the process.
        if (killed) process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        await drain;
        return killed;
    }

    public static async Task<CliResult> RunAsync(TimeSpan timeout, params string[] args)
    {
        using var process = Start(args);
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
