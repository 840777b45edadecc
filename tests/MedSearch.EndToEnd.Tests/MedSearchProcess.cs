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

    /// <summary>Starts a long-running medsearch (`serve`) whose standard output is read line by line as it comes.</summary>
    public static RunningProcess Serve(params string[] args) => new(Start(args));

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

/// <summary>A medsearch child process still running: its standard output so far, by line; disposing kills it.</summary>
public sealed class RunningProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Task _reading;
    private readonly Task<string> _error;

    internal RunningProcess(Process process)
    {
        _process = process;
        _error = process.StandardError.ReadToEndAsync();
        _reading = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
                lock (_lines) _lines.Add(line);
        });
    }

    /// <summary>The lines of standard output read so far.</summary>
    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return [.. _lines]; }
    }

    /// <summary>The first line that <paramref name="match"/> accepts, once it has been written (polled).</summary>
    /// <exception cref="TimeoutException">No such line in <paramref name="timeout"/>, or the process exited first.</exception>
    public async Task<string> LineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Lines.FirstOrDefault(match) is { } line) return line;
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                await Task.WhenAny(_reading, Task.Delay(TimeSpan.FromSeconds(1)));
                if (Lines.FirstOrDefault(match) is { } last) return last;
                throw new TimeoutException($"no such line from medsearch (exited: {_process.HasExited}); stdout:\n{string.Join('\n', Lines)}");
            }
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        await Task.WhenAll(_reading, _error);
        _process.Dispose();
    }
}
