namespace MedSearch.Cli;

/// <summary>
/// First Ctrl-C asks a bulk job to stop after its current batch and save what is done; a second one aborts.
/// Dispose to stop listening.
/// </summary>
public sealed class CtrlC : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly ConsoleCancelEventHandler _handler;

    public CtrlC()
    {
        _handler = (_, e) =>
        {
            e.Cancel = true;
            Console.Error.WriteLine("\nstopping: finishing the current batch and saving what is done (Ctrl-C again to abort)");
            if (_cancel.IsCancellationRequested) Environment.Exit(130);
            _cancel.Cancel();
        };
        Console.CancelKeyPress += _handler;
    }

    public CancellationToken Token => _cancel.Token;

    public void Dispose()
    {
        Console.CancelKeyPress -= _handler;
        _cancel.Dispose();
    }
}
