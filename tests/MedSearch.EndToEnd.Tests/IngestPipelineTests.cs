using System.Diagnostics;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The ingest pipeline through the real CLI: vectors that do not depend on the process or the batch they were
/// embedded in, and a Ctrl-C that stops cleanly and leaves a run that resumes.
/// </summary>
public sealed class IngestPipelineTests : IDisposable
{
    private const string Data = MedMnistFolder.BreastMnist;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "medsearch-ingest-" + Guid.NewGuid().ToString("N")[..8]);
    private string Images => Path.Combine(_root, "images");

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private static Dictionary<string, float[]> Vectors(string data)
    {
        using var collection = Collection.Open(data, new CollectionOptions { Encoder = new EncoderOptions { Device = EncoderDevice.Cpu } });
        return collection.Cases().ToDictionary(c => c.Key, c => c.Embedding.ToArray());
    }

    [SharedDataFact(Data)]
    public async Task The_same_image_gets_the_same_vector_bit_for_bit_across_processes_and_batch_sizes()
    {
        const int count = 40;
        MedMnistFolder.WriteBreastMnist(Images, count);
        var one = Path.Combine(_root, "batch-1");
        var many = Path.Combine(_root, "batch-32");
        // Two processes, one embedding image by image, the other in dynamic batches of up to 32.
        var first = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", Images, "--data", one, "--batch", "1", "--device", "cpu");
        Assert.True(first.ExitCode == 0, first.ToString());
        var second = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", Images, "--data", many, "--batch", "32", "--batch-wait", "50", "--device", "cpu");
        Assert.True(second.ExitCode == 0, second.ToString());

        var a = Vectors(one);
        var b = Vectors(many);
        Assert.Equal(count, a.Count);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (key, vector) in a)
            Assert.True(vector.AsSpan().SequenceEqual(b[key]), $"{key}: batch 1 and batch 32 vectors differ");

        // And a third process (this one), embedding a batch of 7 of the same files.
        using var collection = Collection.Open(one, new CollectionOptions { Encoder = new EncoderOptions { Device = EncoderDevice.Cpu } });
        var keys = a.Keys.Order(StringComparer.Ordinal).Take(7).ToArray();
        var images = keys.Select(k => ImageReader.Read(File.ReadAllBytes(Path.Combine(Images, k[CaseId.FilePrefix.Length..])), k, collection.ReadOptions).Frames[0].Image).ToArray();
        var vectors = new float[images.Length * collection.Dimensions];
        collection.Encoder.Embed(images, vectors);
        for (int i = 0; i < keys.Length; i++)
            Assert.True(vectors.AsSpan(i * collection.Dimensions, collection.Dimensions).SequenceEqual(a[keys[i]]), $"{keys[i]}: in-process batch of 7 differs");
    }

    [SharedDataFact(Data)]
    public async Task Ctrl_C_stops_cleanly_and_a_rerun_resumes_where_it_stopped()
    {
        const int count = 546;
        MedMnistFolder.WriteBreastMnist(Images, count);
        var data = Path.Combine(_root, "data");
        var receipt = Path.Combine(_root, "receipt.txt");

        // Batches of one keep the run long enough to be interrupted half way; the receipt (keys made durable,
        // every second) says when it is under way.
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "medsearch.dll"), "index", Images, "--data", data, "--batch", "1",
                     "--device", "cpu", "--checkpoint-every", "1", "--receipt", receipt })
            start.ArgumentList.Add(arg);
        start.Environment.Remove(DataDirectory.EnvironmentVariable);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        // Ctrl-C as a terminal sends it, once some cases are stored.
        await WaitForAsync(() => File.Exists(receipt) && File.ReadLines(receipt).Any(), TimeSpan.FromMinutes(2));
        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString()])) await kill.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        var interrupted = new CliResult(process.ExitCode, await stdout, await stderr);

        Assert.True(interrupted.ExitCode == 0, interrupted.ToString());
        Assert.Contains("stopping: finishing the current batch", interrupted.Error);
        Assert.Contains("cancelled; what was done is saved", interrupted.Output);
        int before = int.Parse(System.Text.RegularExpressions.Regex.Match(interrupted.Output, @"indexed:\s+(\d+)").Groups[1].Value);
        Assert.InRange(before, 1, count - 1);

        var rerun = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(10), "index", Images, "--data", data, "--device", "cpu");
        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        Assert.Contains($"unchanged: {before}", rerun.Output);
        Assert.Contains($"indexed:   {count - before}", rerun.Output);
        Assert.Contains($"{count} cases stored", rerun.Output);
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > timeout) throw new TimeoutException($"condition not met within {timeout}");
            await Task.Delay(100);
        }
    }
}
