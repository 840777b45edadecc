using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using MedSearch.Embedding;
using MedSearch.Imaging;

namespace MedSearch.Engine;

/// <summary>How an ingest pipeline batches: see <see cref="EmbeddingPipeline{TCase}"/>.</summary>
public sealed record PipelineOptions
{
    /// <summary>Most images per encoder run.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>
    /// How long a batch may wait for more images once it has one: 0 runs whatever is queued at once. Only
    /// matters when decoding is slower than the encoder; on a GPU, fuller batches are worth a few milliseconds.
    /// </summary>
    public TimeSpan BatchWait { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Files read, decoded and preprocessed at once.</summary>
    public int DecodeWorkers { get; init; } = Math.Max(1, Environment.ProcessorCount);

    internal void Validate()
    {
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "batch size must be at least 1");
        if (BatchWait < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(BatchWait), BatchWait, "batch wait must not be negative");
        if (DecodeWorkers < 1) throw new ArgumentOutOfRangeException(nameof(DecodeWorkers), DecodeWorkers, "at least one decode worker is needed");
    }
}

/// <summary>What a pipeline run did: how long, and how much of that the encoder was running a batch.</summary>
public sealed record PipelineStats(TimeSpan Elapsed, TimeSpan EncoderBusy, int Batches, int Images)
{
    /// <summary>The share of the run the encoder spent encoding: below 1 only when it waited for pixels (or for commits).</summary>
    public double EncoderUtilisation => Elapsed > TimeSpan.Zero ? EncoderBusy / Elapsed : 0;
}

/// <summary>
/// The ingest pipeline shared by <c>index</c> and <c>reindex</c>: four stages joined by bounded queues, so that
/// the encoder never waits for pixels while there are any to be had, and memory stays flat on folders of any
/// size.
/// <list type="number">
/// <item>decode: several workers read and decode sources and preprocess each image into the model's input
/// (small and fixed-size, unlike a decoded radiograph, so that is what the queue holds);</item>
/// <item>batch: one thread gathers inputs into a dynamic batch (up to <see cref="PipelineOptions.BatchSize"/>,
/// waiting at most <see cref="PipelineOptions.BatchWait"/> for it to fill) and copies them into one of three
/// reusable batch buffers, while the encoder runs the previous batch;</item>
/// <item>encode: one ONNX Runtime run per batch;</item>
/// <item>commit: the caller stores the vectors while the encoder runs the next batch.</item>
/// </list>
/// Every stage has a thread of its own rather than the thread pool's: they block for long (decoding, a batch's
/// inference), and blocked pool threads would starve the others' continuations for up to seconds.
/// Cancellation stops the decoders at once; batches already gathered are still encoded and committed, so
/// what is stored is kept and a re-run resumes after it.
/// </summary>
/// <typeparam name="TCase">What the caller needs to commit one image, besides its vector.</typeparam>
public sealed class EmbeddingPipeline<TCase>
{
    /// <summary>Batch buffers in flight: one filling, one queued, one in the encoder.</summary>
    private const int BatchBuffers = 3;

    private readonly ImageEncoder _encoder;
    private readonly PipelineOptions _options;

    public EmbeddingPipeline(ImageEncoder encoder, PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        options.Validate();
        _encoder = encoder;
        _options = options;
    }

    /// <summary>Figures of the last <see cref="RunAsync"/>; zero before one has finished.</summary>
    public PipelineStats Stats { get; private set; } = new(TimeSpan.Zero, TimeSpan.Zero, 0, 0);

    /// <summary>One image ready for the encoder: the caller's case and its model input, from <see cref="Preprocess"/>.</summary>
    public readonly record struct Prepared(TCase Case, float[] Input);

    /// <summary>
    /// The model input of <paramref name="image"/>, for a decode worker to return in a <see cref="Prepared"/>.
    /// The array is pooled: the pipeline returns it once the image is in a batch.
    /// </summary>
    /// <exception cref="ArgumentException">The image cannot be encoded (NaN or infinite pixels); the message says why.</exception>
    public float[] Preprocess(PixelImage image)
    {
        var input = ArrayPool<float>.Shared.Rent(_encoder.InputLength);
        try
        {
            _encoder.Preprocess(image, input.AsSpan(0, _encoder.InputLength));
            return input;
        }
        catch
        {
            ArrayPool<float>.Shared.Return(input);
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="prepare"/> on every source (on the decode workers, in parallel) and
    /// <paramref name="commit"/> on every encoded batch (one batch at a time, in the order encoded; row i of the
    /// vectors belongs to case i). Each image <paramref name="prepare"/> yields goes into the bounded queue before
    /// the next is asked for, so a lazy <paramref name="prepare"/> keeps a source of many images (every frame of a
    /// long multi-frame instance) to the queue's worth of memory.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> fired; what was gathered is committed first.</exception>
    public async Task RunAsync<TSource>(IEnumerable<TSource> sources, Func<TSource, IEnumerable<Prepared>> prepare,
        Action<IReadOnlyList<TCase>, float[]> commit, CancellationToken cancellation)
    {
        int perImage = _encoder.InputLength;
        var watch = Stopwatch.StartNew();
        long encoderTicks = 0;
        int batches = 0, images = 0;
        // Enough queued inputs for the next batch plus what every worker is about to add.
        using var decoded = new BlockingCollection<Prepared>(_options.BatchSize + _options.DecodeWorkers);
        using var gathered = new BlockingCollection<(TCase[] Cases, float[] Input)>(1);
        using var encoded = new BlockingCollection<(TCase[] Cases, float[] Vectors)>(1);
        using var free = new BlockingCollection<float[]>();
        // Memory: these three buffers (batch size x model input each), plus the queue of single inputs.
        for (int i = 0; i < BatchBuffers; i++) free.Add(GC.AllocateUninitializedArray<float>(_options.BatchSize * perImage));
        // Stops the other stages when one fails, so that none waits forever on a stage that is gone.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);

        Task Stage(Action body, Action complete) => Task.Factory.StartNew(() =>
        {
            try
            {
                body();
            }
            catch
            {
                stop.Cancel();
                throw;
            }
            finally
            {
                complete();
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        using var next = sources.GetEnumerator();
        var nextLock = new Lock();
        bool TryNext(out TSource source)
        {
            lock (nextLock)
            {
                bool more = !stop.IsCancellationRequested && next.MoveNext();
                source = more ? next.Current : default!;
                return more;
            }
        }
        int running = _options.DecodeWorkers;
        var decoders = Enumerable.Range(0, _options.DecodeWorkers).Select(_ => Stage(() =>
        {
            while (TryNext(out var source))
                foreach (var item in prepare(source)) decoded.Add(item, stop.Token);
        }, () =>
        {
            if (Interlocked.Decrement(ref running) == 0) decoded.CompleteAdding();
        })).ToArray();

        var batcher = Stage(() =>
        {
            while (NextBatch(decoded, stop.Token) is { Count: > 0 } batch)
            {
                var buffer = free.Take(stop.Token);
                var cases = new TCase[batch.Count];
                for (int i = 0; i < batch.Count; i++)
                {
                    cases[i] = batch[i].Case;
                    batch[i].Input.AsSpan(0, perImage).CopyTo(buffer.AsSpan(i * perImage, perImage));
                    ArrayPool<float>.Shared.Return(batch[i].Input);
                }
                gathered.Add((cases, buffer), stop.Token);
            }
        }, gathered.CompleteAdding);

        var encoder = Stage(() =>
        {
            // Not cancellable: a batch gathered before a stop is still encoded and committed.
            foreach (var (cases, input) in gathered.GetConsumingEnumerable())
            {
                var vectors = new float[cases.Length * _encoder.Dimensions];
                long started = Stopwatch.GetTimestamp();
                _encoder.EmbedPreprocessed(input, cases.Length, vectors);
                encoderTicks += Stopwatch.GetTimestamp() - started;
                batches++;
                images += cases.Length;
                free.Add(input);
                encoded.Add((cases, vectors));
            }
        }, encoded.CompleteAdding);

        var committer = Stage(() =>
        {
            try
            {
                foreach (var (cases, vectors) in encoded.GetConsumingEnumerable())
                    commit(cases, vectors);
            }
            catch
            {
                // The stages before this one stop; the encoder still finishes what it holds and needs room for it.
                stop.Cancel();
                foreach (var _ in encoded.GetConsumingEnumerable()) { }
                throw;
            }
        }, () => { });

        var stages = Task.WhenAll([.. decoders, batcher, encoder, committer]);
        await stages.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Stats = new PipelineStats(watch.Elapsed, Stopwatch.GetElapsedTime(0, encoderTicks), batches, images);
        // A stage's own failure, not the cancellations it caused in the others.
        if (stages.Exception?.InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException) is { } failure)
            ExceptionDispatchInfo.Throw(failure);
        cancellation.ThrowIfCancellationRequested();
    }

    /// <summary>The next batch: what is queued, then whatever arrives within the batch wait; empty when the input is done.</summary>
    private List<Prepared> NextBatch(BlockingCollection<Prepared> decoded, CancellationToken cancellation)
    {
        var batch = new List<Prepared>(_options.BatchSize);
        if (!decoded.TryTake(out var first, Timeout.Infinite, cancellation)) return batch;
        batch.Add(first);
        long deadline = Environment.TickCount64 + (long)_options.BatchWait.TotalMilliseconds;
        while (batch.Count < _options.BatchSize)
        {
            // Whatever is queued is taken at once; only then does the batch wait, and never past its deadline.
            int wait = (int)Math.Max(0, deadline - Environment.TickCount64);
            if (!decoded.TryTake(out var item, wait, cancellation)) break;
            batch.Add(item);
        }
        return batch;
    }
}
