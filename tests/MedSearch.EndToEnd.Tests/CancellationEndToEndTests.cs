using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SkiaSharp;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// A call's deadline and its client's cancellation stop the single node's work: the real server on loopback with
/// the tiny model and one inference slot, so that a later search can only run once the stopped one has left the
/// slot, and the encoder's run count then shows whether the stopped query reached the model. The audit file shows
/// the status the server itself gave the call.
/// </summary>
public sealed class CancellationEndToEndTests : IAsyncLifetime
{
    /// <summary>A query image whose decode takes far longer than the deadlines below (it is sent compressed, so small).</summary>
    private static readonly Lazy<byte[]> LargePng = new(() => Png(6000, 6000, seed: 1));

    private readonly string _root = Directory.CreateTempSubdirectory("medsearch-cancel-").FullName;
    private readonly List<byte[]> _stored = [];
    private readonly List<string> _keys = [];
    private WebApplication _app = null!;
    private GrpcChannel _channel = null!;

    private string AuditPath => Path.Combine(_root, "audit.jsonl");
    private ICaseSpace Space => _app.Services.GetRequiredService<ICaseSpace>();
    private ImageEncoder Encoder => Space.Queries.Encoder;
    private SearchService.SearchServiceClient Client => new(_channel);

    public async Task InitializeAsync()
    {
        var options = new CollectionOptions { ModelPath = TinyConvModel.Write(Path.Combine(_root, "model")), Encoder = new EncoderOptions { Device = EncoderDevice.Cpu } };
        var data = Path.Combine(_root, "data");
        using (var collection = Collection.Open(data, options))
        {
            for (int i = 0; i < 3; i++)
            {
                var png = Png(64, 64, seed: i + 2);
                _stored.Add(png);
                _keys.Add(CaseWriter.Ingest(collection, $"stored/{i}.png", png, null).Key!);
            }
            collection.Checkpoint();
        }
        _app = MedSearchServer.Build(new ServerOptions
        {
            DataPath = data,
            Urls = "http://127.0.0.1:0",
            Collection = options,
            Inference = new InferenceOptions { Concurrency = 1 },
            AuditPath = AuditPath,
        });
        await _app.StartAsync();
        _channel = GrpcChannel.ForAddress(new RunningServer(_app).Address);
        _ = LargePng.Value;
        // One search first: the connection is open and the model warm before a deadline is measured.
        await NormalSearchAsync();
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    /// <summary>A grey picture with structure (so that it compresses only moderately and decodes to something).</summary>
    internal static byte[] Png(int width, int height, int seed)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        var pixels = bitmap.GetPixelSpan();
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                pixels[y * width + x] = (byte)((x * (seed + 1) / 7) ^ (y * (seed + 3) / 5));
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return encoded.ToArray();
    }

    /// <summary>A search for a stored image, which must find it; waits (one slot) until any earlier query has left the gate.</summary>
    private async Task NormalSearchAsync()
    {
        var response = await Client.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(_stored[1]), K = 1 });
        Assert.Equal(_keys[1], response.Neighbours.Single().Key);
    }

    /// <summary>The audit file's statuses of <paramref name="method"/> calls, waiting a little for the stopped call's handler to finish.</summary>
    private async Task<List<string>> StatusesAsync(string method, int atLeast)
    {
        for (int attempt = 0; ; attempt++)
        {
            List<string> statuses;
            using (var stream = new FileStream(AuditPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            using (var reader = new StreamReader(stream))
            {
                statuses = (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Select(line => JsonDocument.Parse(line).RootElement)
                    .Where(e => e.GetProperty("method").GetString()!.EndsWith("/" + method, StringComparison.Ordinal))
                    .Select(e => e.GetProperty("status").GetString()!).ToList();
            }
            if (statuses.Count >= atLeast || attempt == 100) return statuses;
            await Task.Delay(100);
        }
    }

    /// <summary>A search for the large image.</summary>
    private Task LargeSearchAsync(CallOptions options) =>
        Client.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(LargePng.Value), K = 1 }, options).ResponseAsync;

    /// <summary>
    /// Starts a search for the large image with <paramref name="options"/> (then runs <paramref name="started"/>);
    /// the client must see <paramref name="expected"/>, the server must say the same in its audit file and serve a
    /// normal search after it, and only that search may have reached the model: with one slot it runs only once the
    /// stopped one has left the slot.
    /// </summary>
    private Task SearchIsStoppedAsync(CallOptions options, Action started, StatusCode expected) =>
        IsStoppedAsync("Search", LargeSearchAsync, options, started, expected);

    /// <summary><see cref="SearchIsStoppedAsync"/> for any <paramref name="method"/> of the search service that <paramref name="call"/> makes.</summary>
    private async Task IsStoppedAsync(string method, Func<CallOptions, Task> call, CallOptions options, Action started, StatusCode expected)
    {
        long runs = Encoder.Runs;
        var response = call(options);
        started();
        var e = await Assert.ThrowsAsync<RpcException>(() => response);
        Assert.Equal(expected, e.StatusCode);

        await NormalSearchAsync();
        Assert.Equal(runs + 1, Encoder.Runs);
        if (method == "Search")
        {
            Assert.Equal([expected.ToString(), "OK", "OK"], (await StatusesAsync("Search", 3)).Order());
            return;
        }
        Assert.Equal([expected.ToString()], await StatusesAsync(method, 1));
        Assert.Equal(["OK", "OK"], await StatusesAsync("Search", 2));
    }

    [Fact]
    public Task A_search_past_its_deadline_is_DEADLINE_EXCEEDED_never_reaches_the_model_and_the_server_serves_on() =>
        SearchIsStoppedAsync(new CallOptions(deadline: DateTime.UtcNow.AddMilliseconds(150)), () => { }, StatusCode.DeadlineExceeded);

    [Fact]
    public async Task A_search_its_client_cancels_is_CANCELLED_never_reaches_the_model_and_the_server_serves_on()
    {
        using var cancel = new CancellationTokenSource();
        await SearchIsStoppedAsync(new CallOptions(cancellationToken: cancel.Token), () => cancel.CancelAfter(TimeSpan.FromMilliseconds(150)), StatusCode.Cancelled);
    }

    [Fact]
    public Task A_classify_past_its_deadline_is_DEADLINE_EXCEEDED_never_reaches_the_model_and_the_server_serves_on() =>
        IsStoppedAsync("Classify",
            options => Client.ClassifyAsync(new ClassifyRequest { Search = new SearchRequest { Image = ByteString.CopyFrom(LargePng.Value), K = 1 } }, options).ResponseAsync,
            new CallOptions(deadline: DateTime.UtcNow.AddMilliseconds(150)), () => { }, StatusCode.DeadlineExceeded);

    [Fact]
    public async Task An_ingest_its_client_cancels_after_the_first_file_is_CANCELLED_and_the_server_serves_on()
    {
        using var cancel = new CancellationTokenSource();
        using var call = new CaseService.CaseServiceClient(_channel).Ingest(cancellationToken: cancel.Token);
        await call.RequestStream.WriteAsync(new IngestRequest { Name = "new/0.png", File = ByteString.CopyFrom(Png(64, 64, seed: 9)) });
        // Well inside the wait for more files before the first is stored (CaseGrpcService.IngestResultWait).
        cancel.CancelAfter(TimeSpan.FromMilliseconds(150));
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None)) { }
        });
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);

        Assert.Equal(["Cancelled"], await StatusesAsync("Ingest", 1));
        // Its handler has finished: it stopped waiting for more files, so the one it had was never stored.
        Assert.Equal(_stored.Count, await Space.CountAsync(CancellationToken.None));
        await NormalSearchAsync();
        Assert.Equal(["OK", "OK"], await StatusesAsync("Search", 2));
    }

    [Fact]
    public async Task A_cancelled_query_is_neither_decoded_nor_embedded_and_a_cancelled_or_late_search_does_not_start()
    {
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();
        long runs = Encoder.Runs;
        // Bytes no decoder reads: OperationCanceledException, not ImageDecodeException, shows no decode was tried.
        byte[] garbage = [1, 2, 3, 4, 5, 6, 7, 8];
        Assert.Throws<OperationCanceledException>(() => Space.Queries.Image(garbage, "garbage", cancel.Token));
        Assert.Throws<OperationCanceledException>(() => Space.Queries.Image(_stored[0], "stored", cancel.Token));
        Assert.Throws<OperationCanceledException>(() => Space.Queries.Images(VolumeLevel.Series, [(garbage, "a"), (garbage, "b")], [], cancel.Token));
        Assert.Equal(runs, Encoder.Runs);

        // The index search itself: not started once the token is cancelled or the deadline has passed.
        var query = Space.Queries.Image(_stored[0], "stored");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Space.SearchAsync(query, new SearchOptions { K = 1 }, cancel.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            Space.SearchAsync(query, new SearchOptions { K = 1, Deadline = DateTime.UtcNow.AddSeconds(-1) }, CancellationToken.None));
        Assert.Single((await Space.SearchAsync(query, new SearchOptions { K = 1 }, CancellationToken.None)).Neighbours);
    }
}
