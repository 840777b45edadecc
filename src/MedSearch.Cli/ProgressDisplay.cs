using MedSearch.Engine;

namespace MedSearch.Cli;

/// <summary>
/// A live one-line progress bar with images/s and time left on a terminal; plain lines every few seconds when
/// output goes to a file or a CI log, where carriage returns would turn into one enormous line.
/// </summary>
public sealed class ProgressDisplay(TextWriter output, bool interactive) : IProgress<IndexProgress>
{
    private const int BarWidth = 30;
    private readonly Lock _lock = new();
    private DateTime _lastPlain = DateTime.MinValue;
    private bool _drawn;

    public void Report(IndexProgress value)
    {
        lock (_lock)
        {
            if (interactive)
            {
                int filled = value.Total == 0 ? BarWidth : (int)((long)BarWidth * value.Done / value.Total);
                output.Write($"\r[{new string('#', filled)}{new string('.', BarWidth - filled)}] {value.Done}/{value.Total}  {value.ImagesPerSecond,6:F1} images/s  ETA {Format(value.Remaining)}   ");
                _drawn = true;
            }
            else if (DateTime.UtcNow - _lastPlain >= TimeSpan.FromSeconds(5) || value.Done == value.Total)
            {
                output.WriteLine($"progress: {value.Done}/{value.Total} images, {value.ImagesPerSecond:F1} images/s, ETA {Format(value.Remaining)}");
                _lastPlain = DateTime.UtcNow;
            }
        }
    }

    /// <summary>Ends the bar's line so that what follows starts on a fresh one.</summary>
    public void Finish()
    {
        lock (_lock)
        {
            if (_drawn) output.WriteLine();
            _drawn = false;
        }
    }

    private static string Format(TimeSpan? remaining) => remaining is { } r
        ? r.TotalHours >= 1 ? r.ToString(@"h\:mm\:ss") : r.ToString(@"m\:ss")
        : "--:--";
}
