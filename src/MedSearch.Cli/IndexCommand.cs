using MedSearch.Engine;
using MedSearch.Imaging;

namespace MedSearch.Cli;

public static class IndexCommand
{
    private const string Help = $"""
        usage: medsearch index PATH [--labels labels.csv] [--data DIR] [--batch N] [--frames middle|first|all]
                              [--checkpoint-every SECONDS] [--receipt FILE] [--model M] [--device D] [--batch-wait MS]

        Walks PATH (a folder, recursively, or one file), embeds every DICOM, PNG and JPEG image in batches, stores
        each case and adds it to the search index. Files are recognised by content, not name. A DICOM instance is
        keyed by its SOP Instance UID, other images by their path relative to PATH, so running it again duplicates
        nothing: unchanged files are skipped, changed files and changed labels are updated in place.

        options:
          --labels FILE   CSV with a header; a `path` column (relative to PATH) or `sop_instance_uid`; a `labels`
                          column with ';'-separated labels (empty = unlabelled); other columns are kept as metadata
          --data DIR      data directory (default: $MEDSEARCH_DATA, else ./index-data)
          --batch N       images per encoder batch (default 16)
        {EncoderArguments.BatchWaitHelp}
          --frames WHICH  frames of a multi-frame DICOM that become cases: middle (default; one case per
                          instance), first, or all (one case per frame)
          --checkpoint-every SECONDS
                          make progress durable this often (default 60); a crash loses at most this much work,
                          and a re-run picks up from the last checkpoint
          --receipt FILE  append the key of each case once a checkpoint has made it durable: the run's
                          acknowledgement of what is stored, which a crash cannot take back
        {EncoderArguments.ModelAndDeviceHelp}
        {EncoderArguments.VolumeHelp}

        exit status: 0 all done, 3 finished but some files failed (listed), 1 the job could not run, 2 bad usage
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, new HashSet<string> { "--labels", "--data", "--batch", "--frames", "--checkpoint-every", "--receipt",
            EncoderArguments.Model, EncoderArguments.Device, EncoderArguments.BatchWait, EncoderArguments.Pooling, EncoderArguments.SeriesSlices }, new HashSet<string>());
        if (line.Help) { Console.Out.Write(Help); return Program.Ok; }
        if (line.Positional.Count != 1) throw new UsageException("expects exactly one PATH to index");
        var root = Path.GetFullPath(line.Positional[0]);
        if (!Directory.Exists(root) && !File.Exists(root)) throw new UsageException($"{root} does not exist");
        var labels = line.Get("--labels");
        if (labels is not null && !File.Exists(labels)) throw new UsageException($"labels file {labels} does not exist");
        int batch = EncoderArguments.Batch(line);

        var frames = EncoderArguments.Frames(line, allowAll: true);
        int checkpointSeconds = line.GetInt("--checkpoint-every", 60);
        if (checkpointSeconds < 1) throw new UsageException($"--checkpoint-every must be at least 1 second, got {checkpointSeconds}");
        var dataPath = DataDirectory.Resolve(line.Get("--data"));
        var collectionOptions = EncoderArguments.Options(line, batch);
        var batchWait = EncoderArguments.Wait(line);
        using var cancel = new CtrlC();
        Console.Out.WriteLine($"data directory: {dataPath}");
        using var collection = Collection.Open(dataPath, collectionOptions, message => Console.Out.WriteLine(message));
        Console.Out.WriteLine($"model: {collection.ModelId} ({collection.Dimensions}-d), device: {collection.Encoder.DeviceDescription}; {collection.Count:N0} cases stored");

        var progress = new ProgressDisplay(Console.Out, interactive: !Console.IsOutputRedirected);
        var summary = await IndexJob.RunAsync(collection,
            new IndexJobOptions { Root = root, LabelsPath = labels, BatchSize = batch, BatchWait = batchWait, Frames = frames,
                CheckpointInterval = TimeSpan.FromSeconds(checkpointSeconds), ReceiptPath = line.Get("--receipt") }, progress, cancel.Token);
        progress.Finish();
        PrintSummary(summary, collection.Count);
        return summary.Failed.Count > 0 ? Program.PartialFailure : Program.Ok;
    }

    private static void PrintSummary(IndexSummary summary, long stored)
    {
        var o = Console.Out;
        o.WriteLine(summary.Cancelled ? "cancelled; what was done is saved and a re-run resumes from there" : "done");
        o.WriteLine($"  indexed:   {summary.Indexed}");
        o.WriteLine($"  updated:   {summary.Updated}");
        o.WriteLine($"  unchanged: {summary.Unchanged}");
        o.WriteLine($"  skipped:   {summary.Skipped.Count}");
        foreach (var group in summary.Skipped.GroupBy(s => s.Reason).OrderByDescending(g => g.Count()))
            o.WriteLine($"    {group.Count()} x {group.Key}");
        o.WriteLine($"  failed:    {summary.Failed.Count}");
        foreach (var failed in summary.Failed)
            o.WriteLine($"    {failed.Path}: {failed.Reason}");
        if (summary.WithoutLabels > 0)
            o.WriteLine($"  {summary.WithoutLabels} images have no row in the labels file (stored unlabelled)");
        if (summary.UnmatchedLabelRows.Count > 0)
        {
            o.WriteLine($"  {summary.UnmatchedLabelRows.Count} labels rows match no file, e.g.:");
            foreach (var key in summary.UnmatchedLabelRows.Take(5)) o.WriteLine($"    {key}");
        }
        if (summary.SeriesProblems.Count > 0)
        {
            o.WriteLine($"  {summary.SeriesProblems.Count} series problems (the series are indexed from their other slices):");
            foreach (var problem in summary.SeriesProblems) o.WriteLine($"    {problem}");
        }
        double rate = (summary.Indexed + summary.Updated) / Math.Max(summary.Elapsed.TotalSeconds, 1e-3);
        o.WriteLine($"  {stored:N0} cases stored; {summary.Elapsed.TotalSeconds:F1} s, {rate:F1} images/s embedded");
    }
}
