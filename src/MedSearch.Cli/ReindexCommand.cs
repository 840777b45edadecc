using MedSearch.Engine;
using MedSearch.Imaging;

namespace MedSearch.Cli;

public static class ReindexCommand
{
    private const string Help = $"""
        usage: medsearch reindex --to NEW [--model M] [--data OLD] [--device D] [--batch N] [--batch-wait MS]
                                 [--frames middle|first]

        Re-embeds every case of the data directory OLD with the model M (default: the built-in ResNet18) into
        the new data directory NEW: the way to change encoders, since vectors of different models cannot be
        compared. The store keeps no pixels,
        so each case's file is read again from the path it was indexed from and must still hold the same bytes
        (checked by sha256); labels, metadata, keys and ids are carried over. A case whose file is gone or
        changed is listed and left out. OLD is only read and stays usable; serve NEW (with --model M) once the
        run is done. Stopped with Ctrl-C, or interrupted, a re-run resumes where it stopped.

        options:
        {EncoderArguments.ModelAndDeviceHelp}
          --to NEW        the data directory the re-embedded cases go to (new, or one a stopped run left)
          --data OLD      the data directory to re-embed (default: $MEDSEARCH_DATA, else ./index-data)
          --batch N       images per encoder batch (default 16)
        {EncoderArguments.BatchWaitHelp}
          --frames WHICH  the frame multi-frame instances were indexed with: middle (default) or first; cases
                          indexed with --frames all name their frame themselves

        exit status: 0 all done, 3 finished but some cases could not be re-embedded (listed), 1 the job could
        not run, 2 bad usage
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, new HashSet<string>
        {
            "--to", "--data", "--batch", "--frames", EncoderArguments.Model, EncoderArguments.Device, EncoderArguments.BatchWait,
        }, new HashSet<string>());
        if (line.Help) { Console.Out.Write(Help); return Program.Ok; }
        if (line.Positional.Count != 0) throw new UsageException($"takes no positional arguments, got `{line.Positional[0]}`");
        var to = line.Get("--to") ?? throw new UsageException("--to NEW is required: the data directory the re-embedded cases go to");
        int batch = EncoderArguments.Batch(line);
        var frames = EncoderArguments.Frames(line, allowAll: false);
        var options = new ReindexOptions
        {
            From = DataDirectory.Resolve(line.Get("--data")),
            To = Path.GetFullPath(to),
            Collection = EncoderArguments.Options(line, batch),
            Pipeline = new PipelineOptions { BatchSize = batch, BatchWait = EncoderArguments.Wait(line) },
            Frames = frames,
        };

        using var cancel = new CtrlC();
        Console.Out.WriteLine($"re-embedding {options.From} into {options.To} with {options.Collection.ModelDescription}");
        var progress = new ProgressDisplay(Console.Out, interactive: !Console.IsOutputRedirected);
        var summary = await ReindexJob.RunAsync(options, message => Console.Out.WriteLine(message), progress, cancel.Token);
        progress.Finish();
        Print(summary);
        return summary.Failed.Count > 0 ? Program.PartialFailure : Program.Ok;
    }

    private static void Print(ReindexSummary summary)
    {
        var o = Console.Out;
        o.WriteLine(summary.Cancelled ? "cancelled; what was done is saved and a re-run resumes from there" : "done");
        o.WriteLine($"  re-embedded:  {summary.Reindexed}");
        o.WriteLine($"  already done: {summary.AlreadyDone}");
        o.WriteLine($"  failed:       {summary.Failed.Count}  (not in the new data directory)");
        foreach (var failed in summary.Failed)
            o.WriteLine($"    {failed.Path}: {failed.Reason}");
        double rate = summary.Reindexed / Math.Max(summary.Elapsed.TotalSeconds, 1e-3);
        o.WriteLine($"  {summary.Total:N0} cases in the old data directory; {summary.Elapsed.TotalSeconds:F1} s, {rate:F1} images/s embedded");
    }
}
