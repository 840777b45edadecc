using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Imaging;

namespace MedSearch.Cli;

/// <summary>The encoder options every verb that embeds shares: --model, --device and, for bulk jobs, --batch-wait.</summary>
public static class EncoderArguments
{
    public const string Model = "--model";
    public const string Device = "--device";
    public const string BatchWait = "--batch-wait";
    public const string Pooling = "--pooling";
    public const string SeriesSlices = "--series-slices";

    /// <summary>The options of every verb that opens a collection for writing or serving.</summary>
    public static readonly string[] VolumeOptions = [Pooling, SeriesSlices];

    public const string VolumeHelp = """
          --pooling P     how series are pooled from their slices: mean, median, max or meanmax (mean and max
                          concatenated); recorded in the data directory and kept until changed (default mean)
          --series-slices N  slices sampled evenly per series and pooled, 1..1024 (recorded; default 16)
        """;

    public const string ModelAndDeviceHelp = """
          --model M       the encoder: a model folder or its manifest.json (docs/models.md); default
                          $MEDSEARCH_MODEL, else the built-in ResNet18. A data directory only takes the model it
                          was built with
          --device D      where the encoder runs: auto (default; CUDA when usable, else the CPU, saying why),
                          cpu, cuda or cuda:N; default $MEDSEARCH_DEVICE, else auto
        """;

    public const string BatchWaitHelp = """
          --batch-wait MS how long a batch may wait to fill once it has an image (default 10; 0 = never)
        """;

    /// <summary>The collection options --model and --device (or their environment variables) ask for.</summary>
    /// <param name="batch">Images per encoder run in a bulk job; null for the encoder's default.</param>
    public static CollectionOptions Options(CommandLine line, int? batch = null)
    {
        var encoder = batch is { } size ? new EncoderOptions { MaxBatchSize = size } : new EncoderOptions();
        try
        {
            Engine.Pooling? pooling = line.Get(Pooling) switch
            {
                null => null,
                "mean" => Engine.Pooling.Mean,
                "median" => Engine.Pooling.Median,
                "max" => Engine.Pooling.Max,
                "meanmax" => Engine.Pooling.MeanMax,
                var other => throw new UsageException($"{Pooling} must be mean, median, max or meanmax, got `{other}`"),
            };
            int? slices = line.Has(SeriesSlices) ? line.GetInt(SeriesSlices, 0) : null;
            if (slices is < 1 or > 1024) throw new UsageException($"{SeriesSlices} must be between 1 and 1024, got {slices}");
            return CollectionOptions.FromSettings(line.Get(Model), line.Get(Device), encoder, pooling, slices);
        }
        catch (FormatException e)
        {
            // FromSettings names $MEDSEARCH_DEVICE itself when the value came from there.
            throw new UsageException(line.Get(Device) is null ? e.Message : $"{Device}: {e.Message}");
        }
    }

    /// <summary>--batch: images per encoder run in a bulk job.</summary>
    public static int Batch(CommandLine line)
    {
        int batch = line.GetInt("--batch", 16);
        if (batch is < 1 or > 1024) throw new UsageException($"--batch must be between 1 and 1024, got {batch}");
        return batch;
    }

    /// <summary>--frames: which frames of a multi-frame instance are cases; `all` only where <paramref name="allowAll"/>.</summary>
    public static FrameSelection Frames(CommandLine line, bool allowAll) => line.Get("--frames") switch
    {
        null or "middle" => FrameSelection.Middle,
        "first" => FrameSelection.First,
        "all" when allowAll => FrameSelection.All,
        var other => throw new UsageException(allowAll ? $"--frames must be middle, first or all, got `{other}`" : $"--frames must be middle or first, got `{other}`"),
    };

    public static TimeSpan Wait(CommandLine line)
    {
        int ms = line.GetInt(BatchWait, (int)new PipelineOptions().BatchWait.TotalMilliseconds);
        if (ms is < 0 or > 10_000) throw new UsageException($"{BatchWait} must be between 0 and 10000 milliseconds, got {ms}");
        return TimeSpan.FromMilliseconds(ms);
    }
}
