using System.Diagnostics;
using System.Text.Json;
using MedSearch.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MedSearch.Dicom.Tests;

/// <summary>
/// dicom-fuzzing-corpus v3: every malformed file either reads (and then yields its frames) or is refused with a
/// DicomException, quickly. Anything else (another exception type, a hang) is a bug this test exists to catch.
/// </summary>
public sealed class FuzzCorpusTests(ITestOutputHelper output)
{
    private const string Corpus = "dicom/fuzz-corpus/fuzz_corpus_v3";
    private static readonly TimeSpan PerFileBound = TimeSpan.FromSeconds(2);

    private enum Outcome { FramesRead, NoPixelData, PixelsRefused, FileRefused }

    [SharedDataFact(Corpus)]
    public void Every_fuzz_file_reads_or_is_refused_with_a_DicomException_quickly()
    {
        var root = SharedData.Require(Corpus);
        var categories = ManifestCategories(root);
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) is not ("manifest.json" or "README.md"))
            .Order(StringComparer.Ordinal)
            .ToList();
        var tally = new SortedDictionary<string, int[]>(StringComparer.Ordinal);
        var failures = new List<string>();
        var hasher = new PatientHasher(new byte[PatientHasher.KeyBytes]);
        var (slowest, slowestFile) = (TimeSpan.Zero, "");
        // The first read pays for JIT compilation; that is not the file's doing.
        Read(Path.Combine(root, "baseline", "BASELINE_valid_ct.dcm"), hasher);
        foreach (var file in files)
        {
            var relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            var category = categories.GetValueOrDefault(relative, relative.Split('/')[0]);
            // On a thread of its own (not the pool, which parallel test classes keep busy) so that a hang fails
            // this file instead of stalling the run, and the clock measures the read, not a wait for a thread.
            var work = Task.Factory.StartNew(() =>
            {
                var clock = Stopwatch.StartNew();
                var result = Read(file, hasher);
                return (result.Outcome, result.Error, clock.Elapsed);
            }, TaskCreationOptions.LongRunning);
            if (!work.Wait(PerFileBound * 5))
            {
                failures.Add($"{relative}: still running after {PerFileBound * 5} (hang)");
                continue;
            }
            var (outcome, error, elapsed) = work.Result;
            if (elapsed > slowest) (slowest, slowestFile) = (elapsed, relative);
            if (elapsed > PerFileBound) failures.Add($"{relative}: took {elapsed.TotalSeconds:F2} s");
            if (error is not null)
            {
                failures.Add($"{relative}: {error}");
                continue;
            }
            if (!tally.TryGetValue(category, out var counts)) tally[category] = counts = new int[4];
            counts[(int)outcome]++;
        }

        output.WriteLine($"fuzz corpus: {files.Count} files, slowest {slowest.TotalMilliseconds:F0} ms ({slowestFile})");
        output.WriteLine($"{"category",-28} {"frames read",11} {"no pixels",9} {"px refused",10} {"refused",7}");
        foreach (var (category, counts) in tally)
            output.WriteLine($"{category,-28} {counts[0],11} {counts[1],9} {counts[2],10} {counts[3],7}");
        var totals = Enumerable.Range(0, 4).Select(i => tally.Values.Sum(c => c[i])).ToArray();
        output.WriteLine($"{"total",-28} {totals[0],11} {totals[1],9} {totals[2],10} {totals[3],7}");
        Assert.True(files.Count >= 379, $"expected the 379 corpus files (and the baseline), found {files.Count}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>Everything a caller would do with a file: open, take metadata, find the pixel data, read every frame.</summary>
    private static (Outcome Outcome, string? Error) Read(string path, PatientHasher hasher)
    {
        try
        {
            DicomFile file;
            try
            {
                file = DicomFile.Open(path);
            }
            catch (DicomException)
            {
                return (Outcome.FileRefused, null);
            }
            InstanceMetadata.From(file.Dataset, hasher);
            if (!file.Dataset.Contains(DicomTag.PixelData)) return (Outcome.NoPixelData, null);
            try
            {
                var pixels = file.GetPixelData();
                for (int i = 0; i < pixels.NumberOfFrames; i++)
                {
                    var frame = pixels.GetFrame(i);
                    if (!pixels.IsEncapsulated && frame.Length != pixels.FrameBytes)
                        return (Outcome.FramesRead, $"frame {i} has {frame.Length} bytes, not {pixels.FrameBytes}");
                }
                return (Outcome.FramesRead, null);
            }
            catch (DicomException)
            {
                return (Outcome.PixelsRefused, null);
            }
        }
        catch (Exception e)
        {
            return (Outcome.FileRefused, $"{e.GetType().Name} escaped: {e.Message}\n{e.StackTrace}");
        }
    }

    /// <summary>File (relative to the corpus root) → category name, from manifest.json.</summary>
    private static Dictionary<string, string> ManifestCategories(string root)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "manifest.json")));
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var category in manifest.RootElement.GetProperty("categories").EnumerateArray())
        {
            var name = category.GetProperty("name").GetString()!;
            foreach (var entry in category.GetProperty("cases").EnumerateArray())
                result[entry.GetProperty("filename").GetString()!] = name;
        }
        return result;
    }
}
