using System.ComponentModel;
using System.Diagnostics;

namespace MedSearch.Dicom.Tests;

/// <summary>
/// Runs the Debian tools these tests compare against (DCMTK, GDCM, pydicom). They are CI prerequisites like the
/// native codec libraries: a missing one fails the test with the package to install, it is never a skip.
/// </summary>
internal static class Tool
{
    public const string Python = "/usr/bin/python3";

    private static readonly Dictionary<string, string> Packages = new()
    {
        ["dcmcrle"] = "dcmtk",
        ["dcmcjpeg"] = "dcmtk",
        ["dcmcjpls"] = "dcmtk",
        ["dcmconv"] = "dcmtk",
        ["gdcmconv"] = "libgdcm-tools",
        [Python] = "python3-pydicom python3-gdcm python3-numpy",
    };

    /// <summary>Runs <paramref name="tool"/> to completion and returns its standard output; any exit status but 0 throws with its stderr.</summary>
    public static string Run(string tool, IEnumerable<string> arguments, string? input = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(tool)
        {
            RedirectStandardInput = input is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        string commandLine = $"{tool} {string.Join(' ', start.ArgumentList)}";
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"{tool} is missing (a CI prerequisite): apt-get install {Packages.GetValueOrDefault(tool, "the package that provides it")}", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (input is not null)
            {
                process.StandardInput.Write(input);
                process.StandardInput.Close();
            }
            var limit = timeout ?? TimeSpan.FromMinutes(1);
            if (!process.WaitForExit(limit))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{commandLine} ran over {limit.TotalSeconds:F0} s");
            }
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"{commandLine} failed with exit status {process.ExitCode}: {stderr.Result}{stdout.Result}");
            return stdout.Result;
        }
    }

    /// <summary>A temporary folder, deleted with everything in it on dispose.</summary>
    public sealed class Scratch : IDisposable
    {
        public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("medsearch-dicom-").FullName;

        public string File(string name) => Path.Combine(Directory, name);

        public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
    }
}
