using System.Diagnostics;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>Debian's /usr/bin/python3 (the first python3 on PATH may lack pydicom, numpy and scikit-learn), running a test script.</summary>
public static class DebianPython
{
    /// <summary>Runs <paramref name="script"/> and returns its stdout; a non-zero exit fails the test with stderr and the packages it may lack.</summary>
    public static async Task<string> RunAsync(string script, params string[] args)
    {
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(process.ExitCode == 0,
            $"{script} failed ({process.ExitCode}); it needs Debian's python3-pydicom, python3-numpy and python3-sklearn (installed by .ci/run):\n{await stderr}\n{await stdout}");
        return await stdout;
    }
}
