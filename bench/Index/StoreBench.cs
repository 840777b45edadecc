using System.Diagnostics;
using Google.Protobuf;
using MedSearch.Storage;
using MedSearch.Storage.Records;

namespace MedSearch.Bench.Index;

/// <summary>
/// <see cref="CaseStore"/> with realistic records (512-d embedding, labels, metadata, hash: about 2.4 KB each):
/// upserts, checkpoint, point reads, scan, delete + compaction, recovery, peak memory. Prints one Markdown row;
/// run one process per size so that the peak memory is that size's.
/// </summary>
internal static class StoreBench
{
    private const int Dimensions = 512;
    private static readonly TimeSpan ReadBudget = TimeSpan.FromSeconds(3);

    public static void PrintHeader()
    {
        Console.WriteLine("| cases | upserts/s | checkpoint s | reads/s (1 thread) | reads/s (all threads) | scan s | delete 10% + compact s | log MiB before / after compaction | recovery s | peak RSS MiB |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }

    public static void Run(string directory, int count, int threads)
    {
        var path = Path.Combine(directory, $"store-{count}");
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        var options = new CaseStoreOptions();
        double upsertsPerSecond, checkpointSeconds, readsOne, readsAll, scanSeconds, compactSeconds;
        long logBefore, logAfter;
        using (var store = CaseStore.Open(path, options))
        {
            var watch = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var record = Template(t);
                for (int i = t; i < count; i += threads)
                {
                    record.Id = IdOf(i);
                    record.Key = $"file:case-{i:D8}.png";
                    store.Upsert(record);
                }
            });
            upsertsPerSecond = count / watch.Elapsed.TotalSeconds;

            watch.Restart();
            store.Checkpoint();
            checkpointSeconds = watch.Elapsed.TotalSeconds;

            readsOne = Reads(store, count, 1);
            readsAll = Reads(store, count, threads);

            watch.Restart();
            long scanned = store.Scan().LongCount();
            scanSeconds = watch.Elapsed.TotalSeconds;
            if (scanned != count) throw new InvalidOperationException($"scan found {scanned} cases, {count} were written");

            logBefore = LogBytes(path);
            watch.Restart();
            for (int i = 0; i < count; i += 10) store.Delete(IdOf(i));
            store.Compact();
            compactSeconds = watch.Elapsed.TotalSeconds;
            logAfter = LogBytes(path);
        }

        var recovery = Stopwatch.StartNew();
        using (var reopened = CaseStore.Open(path, options))
        {
            double recoverySeconds = recovery.Elapsed.TotalSeconds;
            long expected = count - (count + 9) / 10;
            if (reopened.Count != expected) throw new InvalidOperationException($"recovered {reopened.Count} cases, expected {expected}");
            Console.WriteLine($"| {count:N0} | {upsertsPerSecond:N0} | {checkpointSeconds:F2} | {readsOne:N0} | {readsAll:N0} | {scanSeconds:F1} | " +
                              $"{compactSeconds:F1} | {logBefore / 1048576.0:N0} / {logAfter / 1048576.0:N0} | {recoverySeconds:F1} | {PeakRssMiB():N0} |");
        }
        Directory.Delete(path, recursive: true);
    }

    /// <summary>Random point reads of live cases for a few seconds on <paramref name="threads"/> threads; reads per second.</summary>
    private static double Reads(CaseStore store, int count, int threads)
    {
        long total = 0;
        var watch = Stopwatch.StartNew();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var random = new Random(t);
            long reads = 0;
            while (watch.Elapsed < ReadBudget)
            {
                for (int i = 0; i < 1000; i++)
                    if (!store.TryGet(IdOf(random.Next(count)), out _)) throw new InvalidOperationException("a written case is missing");
                reads += 1000;
            }
            Interlocked.Add(ref total, reads);
        });
        return total / watch.Elapsed.TotalSeconds;
    }

    /// <summary>Case ids are 63-bit hashes of the case key; a multiplicative hash spreads them the same way.</summary>
    private static ulong IdOf(int i) => ((ulong)i + 1) * 0x9E3779B97F4A7C15UL >> 1;

    private static CaseRecord Template(int seed)
    {
        var random = new Random(seed);
        var record = new CaseRecord
        {
            Source = "/data/archive/chest/2024/03/17/CT/series-0004/image-000123.dcm",
            ModelId = "resnet18-imagenet-v1+3f9a0c1e5b7d2a4c6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d",
            IndexedUnixMs = 1_750_000_000_000,
            Width = 512,
            Height = 512,
            ContentSha256 = ByteString.CopyFrom(Enumerable.Range(0, 32).Select(i => (byte)random.Next(256)).ToArray()),
        };
        record.Labels.Add("pneumonia");
        record.Labels.Add("effusion");
        foreach (var (name, value) in new[] { ("split", "train"), ("sex", "F"), ("age", "57"), ("modality", "CT"), ("body_part", "CHEST"), ("view", "AX"), ("manufacturer", "SIEMENS"), ("study_date", "20240317") })
            record.Metadata[name] = value;
        for (int d = 0; d < Dimensions; d++) record.Embedding.Add((float)(random.NextDouble() * 2 - 1));
        return record;
    }

    private static long LogBytes(string path) => Directory.GetFiles(Path.Combine(path, "log")).Sum(f => new FileInfo(f).Length);

    private static double PeakRssMiB()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }
}
