using System.ComponentModel;
using System.Diagnostics;

namespace MedSearch.Dicom.Codecs.Tests;

/// <summary>Runs the Debian encoders and reference decoders on files in a scratch directory.</summary>
internal static class Tools
{
    private static readonly Dictionary<string, string> Packages = new()
    {
        ["dcmcjpeg"] = "dcmtk",
        ["dcmdjpeg"] = "dcmtk",
        ["dcmcjpls"] = "dcmtk",
        ["dcmcrle"] = "dcmtk",
        ["gdcmconv"] = "libgdcm-tools",
        ["ojph_compress"] = "openjph-tools",
    };

    /// <summary>Writes the image as uncompressed DICOM, runs "tool options in out" and reads what the tool wrote.</summary>
    public static Part10.Image Convert(TestImage image, string tool, params string[] options)
    {
        using var scratch = new Scratch();
        string input = scratch.File("in.dcm"), output = scratch.File("out.dcm");
        System.IO.File.WriteAllBytes(input, Part10.Write(image));
        Run(tool, [.. options, input, output]);
        return Part10.Read(System.IO.File.ReadAllBytes(output));
    }

    /// <summary>Runs a reference decoder ("tool options in out") on an encoded image and reads the native result.</summary>
    public static Part10.Image Reference(TestImage image, string encoder, string[] encoderOptions, string decoder, params string[] decoderOptions)
    {
        using var scratch = new Scratch();
        string input = scratch.File("in.dcm"), encoded = scratch.File("enc.dcm"), decoded = scratch.File("dec.dcm");
        System.IO.File.WriteAllBytes(input, Part10.Write(image));
        Run(encoder, [.. encoderOptions, input, encoded]);
        Run(decoder, [.. decoderOptions, encoded, decoded]);
        return Part10.Read(System.IO.File.ReadAllBytes(decoded));
    }

    public static void Run(string tool, params string[] arguments)
    {
        var start = new ProcessStartInfo(tool)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"{tool} is missing: apt-get install {Packages.GetValueOrDefault(tool, "?")}", e);
        }
        using (process)
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(1)))
            {
                process.Kill();
                throw new TimeoutException($"{tool} {string.Join(' ', arguments)} ran over a minute.");
            }
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)} failed ({process.ExitCode}): {stderr.Result}{stdout.Result}");
        }
    }

    public sealed class Scratch : IDisposable
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("medsearch-codecs-").FullName;

        public string File(string name) => Path.Combine(_directory, name);

        public void Dispose() => Directory.Delete(_directory, recursive: true);
    }
}
