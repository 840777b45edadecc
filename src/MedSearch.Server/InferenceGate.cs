using Grpc.Core;

namespace MedSearch.Server;

/// <summary>How many image embeddings run at once, and how many requests may wait for one.</summary>
public sealed record InferenceOptions
{
    /// <summary>The largest --inference-concurrency: beyond this, parallel embeddings only add memory.</summary>
    public const int MaxConcurrency = 256;

    /// <summary>The largest --inference-queue: each waiting request holds its image bytes in memory.</summary>
    public const int MaxQueue = 10_000;

    /// <summary>Embeddings at once: ONNX Runtime already spreads one over the cores, so more only adds memory.</summary>
    public int Concurrency { get; init; } = Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>Requests that may wait for a slot; beyond that a request is refused at once, never queued into memory.</summary>
    public int Queue { get; init; } = 64;

    /// <summary>The retry hint sent with a refusal.</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromMilliseconds(500);
}

/// <summary>
/// Bounds concurrent inference (decode + embed of query images and of ingested files): requests queue for a slot,
/// and when the queue is full the caller gets RESOURCE_EXHAUSTED with a `retry-after-ms` trailer instead of the
/// server running out of memory. Waiting honours the call's deadline and cancellation.
/// </summary>
public sealed class InferenceGate
{
    public const string RetryAfterTrailer = "retry-after-ms";

    private readonly SemaphoreSlim _slots;
    private readonly InferenceOptions _options;
    private int _waiting;

    public InferenceGate(InferenceOptions options)
    {
        if (options.Concurrency < 1) throw new ArgumentOutOfRangeException(nameof(options), $"inference concurrency must be at least 1, got {options.Concurrency}");
        if (options.Queue < 0) throw new ArgumentOutOfRangeException(nameof(options), $"inference queue must not be negative, got {options.Queue}");
        _options = options;
        _slots = new SemaphoreSlim(options.Concurrency, options.Concurrency);
    }

    /// <summary>Runs <paramref name="work"/> in a slot, on the thread pool.</summary>
    public Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellation) => RunAsync(() => Task.FromResult(work()), cancellation);

    /// <summary>
    /// Runs <paramref name="work"/> in a slot, started on the thread pool; the slot is held until its task ends, so
    /// work that awaits another machine (a cluster shard embedding or storing) still counts against the bound.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<Task<T>> work, CancellationToken cancellation)
    {
        if (!_slots.Wait(0))
        {
            if (Interlocked.Increment(ref _waiting) > _options.Queue)
            {
                Interlocked.Decrement(ref _waiting);
                var trailers = new Metadata { { RetryAfterTrailer, ((long)_options.RetryAfter.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture) } };
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"the server is busy: {_options.Concurrency} images are being embedded and {_options.Queue} wait; retry in {_options.RetryAfter.TotalMilliseconds:0} ms"), trailers);
            }
            try
            {
                await _slots.WaitAsync(cancellation);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }
        try
        {
            cancellation.ThrowIfCancellationRequested();
            return await Task.Run(work, cancellation);
        }
        finally
        {
            _slots.Release();
        }
    }
}
