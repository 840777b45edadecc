using System.Collections.Concurrent;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The ingest pipeline's stages on a real (small) ONNX model: what reaches the commit, dynamic batching, and
/// how failures and cancellation end a run.
/// </summary>
public sealed class EmbeddingPipelineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("medsearch-pipeline-").FullName;
    private readonly ImageEncoder _encoder;

    public EmbeddingPipelineTests()
    {
        _encoder = ImageEncoder.Open(TinyConvModel.Write(Path.Combine(_dir, "model")), new EncoderOptions { Device = EncoderDevice.Cpu, MaxBatchSize = 64 });
    }

    public void Dispose()
    {
        _encoder.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A different small picture for every number.</summary>
    private static PixelImage Image(int seed)
    {
        var pixels = new float[40 * 30];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (i * (seed + 3) + seed * 17) % 256;
        return new PixelImage(40, 30, 1, pixels);
    }

    private EmbeddingPipeline<int> Pipeline(int batch, TimeSpan wait, int workers = 3) =>
        new(_encoder, new PipelineOptions { BatchSize = batch, BatchWait = wait, DecodeWorkers = workers });

    [Fact]
    public async Task A_source_of_many_images_holds_only_the_queues_worth_of_them_at_once()
    {
        // One source, 400 images (every frame of a long multi-frame instance), made lazily: each is made only when
        // the queue has room, so made-but-not-committed stays bounded by the queues, not by the source.
        const int batch = 4, workers = 1, images = 400;
        var pipeline = Pipeline(batch, TimeSpan.Zero, workers);
        int made = 0, committed = 0, mostInFlight = 0;
        IEnumerable<EmbeddingPipeline<int>.Prepared> Frames(int source)
        {
            for (int i = 0; i < images; i++)
            {
                var input = pipeline.Preprocess(Image(i));
                int inFlight = Interlocked.Increment(ref made) - Volatile.Read(ref committed);
                InterlockedMax(ref mostInFlight, inFlight);
                yield return new(i, input);
            }
        }
        var seen = new List<int>();
        await pipeline.RunAsync([0], Frames, (cases, _) =>
        {
            seen.AddRange(cases);
            Interlocked.Add(ref committed, cases.Count);
        }, CancellationToken.None);

        Assert.Equal(Enumerable.Range(0, images), seen);
        // The decode queue (batch + workers), the batch being gathered, one queued for the encoder, one in it, one
        // queued for the commit and one being committed, and the image being made.
        Assert.InRange(mostInFlight, 1, (batch + workers) + 5 * batch + 1);
    }

    private static void InterlockedMax(ref int location, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref location)) && Interlocked.CompareExchange(ref location, value, current) != current) { }
    }

    [Fact]
    public async Task Every_source_is_committed_once_with_the_vector_the_encoder_gives_it_alone()
    {
        var pipeline = Pipeline(batch: 8, TimeSpan.Zero);
        var committed = new Dictionary<int, float[]>();
        var batchSizes = new List<int>();
        await pipeline.RunAsync(Enumerable.Range(0, 50), i => [new(i, pipeline.Preprocess(Image(i)))],
            (cases, vectors) =>
            {
                batchSizes.Add(cases.Count);
                for (int c = 0; c < cases.Count; c++) committed.Add(cases[c], vectors.AsSpan(c * 64, 64).ToArray());
            }, CancellationToken.None);

        Assert.Equal(Enumerable.Range(0, 50), committed.Keys.Order());
        Assert.All(batchSizes, size => Assert.InRange(size, 1, 8));
        foreach (var (i, vector) in committed)
            Assert.True(vector.AsSpan().SequenceEqual(_encoder.Embed(Image(i))), $"image {i}: the pipeline's vector differs");
    }

    [Fact]
    public async Task A_batch_waits_for_a_slow_decoder_when_told_to_and_not_otherwise()
    {
        // One worker taking 30 ms an image: without a wait the encoder starts on whatever is there.
        var started = DateTime.UtcNow;
        DateTime? firstCommit = null, lastPrepared = null;
        var eager = Pipeline(batch: 8, TimeSpan.Zero, workers: 1);
        await eager.RunAsync(Enumerable.Range(0, 16), i =>
            {
                Thread.Sleep(30);
                lastPrepared = DateTime.UtcNow;
                return [new(i, eager.Preprocess(Image(i)))];
            },
            (_, _) => firstCommit ??= DateTime.UtcNow, CancellationToken.None);
        Assert.True(firstCommit < lastPrepared, $"first commit {firstCommit - started} after the last image was decoded ({lastPrepared - started})");

        var sizes = new List<int>();
        var patient = Pipeline(batch: 8, TimeSpan.FromSeconds(30), workers: 1);
        await patient.RunAsync(Enumerable.Range(0, 20), i =>
            {
                Thread.Sleep(30);
                return [new(i, patient.Preprocess(Image(i)))];
            },
            (cases, _) => sizes.Add(cases.Count), CancellationToken.None);
        // Full batches, and the rest as soon as the decoders are done rather than after the wait.
        Assert.Equal([8, 8, 4], sizes);
    }

    [Fact]
    public async Task A_failing_commit_stops_every_stage_and_surfaces_its_own_error()
    {
        var pipeline = Pipeline(batch: 4, TimeSpan.Zero);
        int prepared = 0, batches = 0;
        var run = pipeline.RunAsync(Enumerable.Range(0, 500), i =>
            {
                Interlocked.Increment(ref prepared);
                return [new(i, pipeline.Preprocess(Image(i)))];
            },
            (_, _) =>
            {
                if (++batches == 2) throw new InvalidOperationException("the store is full");
            }, CancellationToken.None);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => run.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal("the store is full", error.Message);
        Assert.True(prepared < 500, $"{prepared} images were still decoded after the failure");
    }

    [Fact]
    public async Task A_failing_decoder_surfaces_its_own_error()
    {
        var pipeline = Pipeline(batch: 4, TimeSpan.Zero);
        var run = pipeline.RunAsync(Enumerable.Range(0, 100),
            i => i == 37 ? throw new FormatException("source 37 is corrupt") : [new(i, pipeline.Preprocess(Image(i)))],
            (_, _) => { }, CancellationToken.None);
        var error = await Assert.ThrowsAsync<FormatException>(() => run.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal("source 37 is corrupt", error.Message);
    }

    [Fact]
    public async Task Cancellation_commits_what_was_gathered_and_then_throws()
    {
        using var cancel = new CancellationTokenSource();
        var pipeline = Pipeline(batch: 4, TimeSpan.Zero);
        var committed = new ConcurrentBag<int>();
        var run = pipeline.RunAsync(Enumerable.Range(0, 2000), i => [new(i, pipeline.Preprocess(Image(i)))],
            (cases, _) =>
            {
                foreach (var c in cases) committed.Add(c);
                cancel.Cancel();
            }, cancel.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.InRange(committed.Count, 1, 1999);
        Assert.Equal(committed.Count, committed.Distinct().Count());
    }
}
