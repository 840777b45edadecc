using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Cli;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Storage.Records;
using System.Net;
using System.Text;
using System.Text.Json;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The request, k and inference bounds through the real server on a loopback port: each test sets a small limit,
/// goes past it, and checks the refusal and that the server keeps serving.
/// </summary>
public sealed class ServerLimitsTests(SecureServerFixture fixture) : IClassFixture<SecureServerFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private SearchRequest ImageSearch(int k = 2) => new() { Image = ByteString.CopyFrom(fixture.Png(1)), K = k };

    [Fact]
    public async Task A_request_over_the_size_limit_is_refused_with_resource_exhausted_and_the_server_keeps_serving()
    {
        await using var server = await fixture.StartAsync(o => o with { MaxRequestBytes = 64 * 1024 });
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        var search = new SearchService.SearchServiceClient(channel);

        // Not an image at all: without the limit this would be INVALID_ARGUMENT (cannot decode), never RESOURCE_EXHAUSTED.
        var oversize = new SearchRequest { Image = ByteString.CopyFrom(new byte[1024 * 1024]), K = 2 };
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await search.SearchAsync(oversize));
        Assert.True(StatusCode.ResourceExhausted == refused.StatusCode, refused.ToString());

        var answer = await search.SearchAsync(ImageSearch());
        Assert.Equal(2, answer.Neighbours.Count);
    }

    [Fact]
    public async Task A_k_over_the_maximum_is_invalid_argument_naming_k_and_the_limit()
    {
        await using var server = await fixture.StartAsync(o => o with { Collection = o.Collection with { MaxNeighbours = 50 } });
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        var search = new SearchService.SearchServiceClient(channel);

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await search.SearchAsync(ImageSearch(k: 51)));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.StartsWith("k:", refused.Status.Detail);
        Assert.Contains("between 1 and 50", refused.Status.Detail);
        Assert.Contains("51", refused.Status.Detail);

        var answer = await search.SearchAsync(ImageSearch(k: 50));
        // Every case: k is above the collection's size (another test here may have ingested one more).
        Assert.True(answer.Neighbours.Count >= SecureServerFixture.CaseCount);
    }

    /// <summary>
    /// Deterministic: an ingest holds the only inference slot (its case space call waits for the test), so of three
    /// image searches exactly one can queue (queue 1) and two must be refused at once; only then is the slot released.
    /// </summary>
    [Fact]
    public async Task Beyond_the_inference_queue_searches_get_resource_exhausted_with_a_retry_hint_and_queued_ones_succeed()
    {
        HeldIngestSpace? held = null;
        await using var server = await fixture.StartAsync(
            o => o with { Inference = new InferenceOptions { Concurrency = 1, Queue = 1, RetryAfter = TimeSpan.FromMilliseconds(300) } },
            wrap: space => held = new HeldIngestSpace(space));
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        var search = new SearchService.SearchServiceClient(channel);

        using var ingest = new CaseService.CaseServiceClient(channel).Ingest();
        await ingest.RequestStream.WriteAsync(new IngestRequest { Name = "held.png", File = ByteString.CopyFrom(fixture.Png(2)) });
        await ingest.RequestStream.CompleteAsync();
        await held!.Entered.Task.WaitAsync(Patience);

        var searches = Enumerable.Range(0, 3).Select(_ => search.SearchAsync(ImageSearch()).ResponseAsync).ToList();
        var refusals = new List<RpcException>();
        while (refusals.Count < 2)
        {
            var done = await Task.WhenAny(searches).WaitAsync(Patience);
            searches.Remove(done);
            refusals.Add(await Assert.ThrowsAsync<RpcException>(() => done));
        }
        foreach (var refused in refusals)
        {
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            Assert.Equal("300", refused.Trailers.GetValue(InferenceGate.RetryAfterTrailer));
        }
        var queued = Assert.Single(searches);
        Assert.False(queued.IsCompleted);

        held.Release.SetResult();
        Assert.Equal(2, (await queued.WaitAsync(Patience)).Neighbours.Count);
        Assert.True(await ingest.ResponseStream.MoveNext());
        Assert.Equal(0, ingest.ResponseStream.Current.Sequence);
        Assert.Equal(2, (await search.SearchAsync(ImageSearch())).Neighbours.Count);
    }

    /// <summary>
    /// Deterministic: a streamed ingest holds a 1.9 MiB file of a 3 MiB request memory (the server has answered for
    /// it, so it has read it, and the stream stays open), so a 1.5 MiB search does not fit until the stream ends.
    /// </summary>
    [Fact]
    public async Task A_call_beyond_the_request_memory_gets_resource_exhausted_until_the_calls_holding_it_end()
    {
        await using var server = await fixture.StartAsync(o => o with { MaxRequestBytes = 2 * 1024 * 1024, RequestMemoryBytes = 3 * 1024 * 1024 });
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        var search = new SearchService.SearchServiceClient(channel);
        // Not an image: once past the budget it is INVALID_ARGUMENT (cannot decode), so the two answers tell where it stopped.
        var large = new SearchRequest { Image = ByteString.CopyFrom(new byte[1536 * 1024]), K = 2 };

        using var ingest = new CaseService.CaseServiceClient(channel).Ingest();
        await ingest.RequestStream.WriteAsync(new IngestRequest { Name = "large.dcm", File = ByteString.CopyFrom(new byte[1900 * 1024]) });
        Assert.True(await ingest.ResponseStream.MoveNext().WaitAsync(Patience));
        Assert.Equal(IngestOutcome.Failed, ingest.ResponseStream.Current.Outcome);

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await search.SearchAsync(large));
        Assert.True(StatusCode.ResourceExhausted == refused.StatusCode, refused.ToString());
        Assert.StartsWith("the server is busy: its request memory is full (--request-memory-mb 3; ", refused.Status.Detail);
        Assert.Contains("by calls in progress, ", refused.Status.Detail);
        Assert.Equal("1000", refused.Trailers.GetValue(InferenceGate.RetryAfterTrailer));
        // Small calls still fit beside the held file.
        Assert.Equal(2, (await search.SearchAsync(ImageSearch())).Neighbours.Count);

        await ingest.RequestStream.CompleteAsync();
        Assert.False(await ingest.ResponseStream.MoveNext().WaitAsync(Patience));
        var decoded = await Assert.ThrowsAsync<RpcException>(async () => await search.SearchAsync(large));
        Assert.True(StatusCode.InvalidArgument == decoded.StatusCode, decoded.ToString());
        // Everything given back: the refused call's part, the stream's files, the last search's.
        Assert.Equal(0, server.RequestMemory.Held);
    }

    [Fact]
    public async Task A_json_body_beyond_the_request_memory_gets_http_429_with_retry_after()
    {
        HeldIngestSpace? held = null;
        await using var server = await fixture.StartAsync(
            o => o with { Http1Urls = "http://127.0.0.1:0", MaxRequestBytes = 2 * 1024 * 1024, RequestMemoryBytes = 3 * 1024 * 1024 },
            wrap: space => held = new HeldIngestSpace(space));
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        // A 1.9 MiB file held inside the case space's ingest (the test releases it), so the call and its charge last.
        using var ingest = new CaseService.CaseServiceClient(channel).Ingest();
        var file = new byte[1900 * 1024];
        fixture.Png(2).CopyTo(file, 0);
        await ingest.RequestStream.WriteAsync(new IngestRequest { Name = "held.png", File = ByteString.CopyFrom(file) });
        await ingest.RequestStream.CompleteAsync();
        await held!.Entered.Task.WaitAsync(Patience);

        using var http = new HttpClient { BaseAddress = new Uri(server.Http1) };
        var body = JsonSerializer.Serialize(new { image = Convert.ToBase64String(new byte[1024 * 1024]), k = 2 });
        using (var refused = await http.PostAsync("/v1/search", new StringContent(body, Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
            // Charged as it arrives: refused part-way through its 1.3 MiB.
            var text = await refused.Content.ReadAsStringAsync();
            Assert.Matches(@"^a body of 1(\.\d)? MiB so far: the server is busy: its request memory is full \(--request-memory-mb 3; ", text);
        }

        held.Release.SetResult();
        while (await ingest.ResponseStream.MoveNext().WaitAsync(Patience)) { }
        Assert.Equal(0, server.RequestMemory.Held);
        using var decoded = await http.PostAsync("/v1/search", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, decoded.StatusCode);
        Assert.Equal(0, server.RequestMemory.Held);
    }

    [Fact]
    public async Task A_compressed_request_is_refused_naming_the_encodings_accepted()
    {
        await using var server = await fixture.StartAsync();
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        var search = new SearchService.SearchServiceClient(channel);
        // Grpc.Net.Client compresses a request whose call names an encoding in this header.
        var gzip = new Metadata { { "grpc-internal-encoding-request", "gzip" } };
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await search.SearchAsync(ImageSearch(), gzip));
        Assert.True(StatusCode.Unimplemented == refused.StatusCode, refused.ToString());
        Assert.Contains("identity", refused.Status.Detail);
        Assert.Equal(2, (await search.SearchAsync(ImageSearch())).Neighbours.Count);
    }

    [Fact]
    public async Task A_long_ingest_stream_is_charged_for_the_files_it_holds_not_for_all_it_sent()
    {
        // 40 files of 160 KiB are 6.25 MiB, over the 4 MiB budget; the ingest holds at most 17 (2.7 MiB) at a time,
        // and the server's HTTP/2 window (768 KiB) buffers a few more below gRPC.
        await using var server = await fixture.StartAsync(o => o with { MaxRequestBytes = 2 * 1024 * 1024, RequestMemoryBytes = 4 * 1024 * 1024 });
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        using var ingest = new CaseService.CaseServiceClient(channel).Ingest();
        const int files = 40;
        for (int i = 0; i < files; i++)
            await ingest.RequestStream.WriteAsync(new IngestRequest { Name = $"file-{i}.dcm", File = ByteString.CopyFrom(new byte[160 * 1024]) });
        await ingest.RequestStream.CompleteAsync();

        var outcomes = new List<IngestOutcome>();
        while (await ingest.ResponseStream.MoveNext().WaitAsync(Patience)) outcomes.Add(ingest.ResponseStream.Current.Outcome);
        Assert.Equal(Enumerable.Repeat(IngestOutcome.Failed, files), outcomes);
        Assert.Equal(0, server.RequestMemory.Held);
    }

    [Fact]
    public async Task Files_an_ingest_still_holds_stay_charged_when_small_ones_follow()
    {
        // Three 500 KiB files, then 20 empty ones: the first group of 16 is held in the store (the test releases
        // it), and the files read after it must not buy the large ones back.
        HeldIngestSpace? held = null;
        await using var server = await fixture.StartAsync(o => o with { MaxRequestBytes = 2 * 1024 * 1024, RequestMemoryBytes = 4 * 1024 * 1024 },
            wrap: space => held = new HeldIngestSpace(space));
        using var channel = GrpcChannel.ForAddress(server.Grpc);
        using var ingest = new CaseService.CaseServiceClient(channel).Ingest();
        for (int i = 0; i < 3; i++)
        {
            var file = new byte[500 * 1024];
            fixture.Png(1 + i).CopyTo(file, 0);
            await ingest.RequestStream.WriteAsync(new IngestRequest { Name = $"large-{i}.png", File = ByteString.CopyFrom(file) });
        }
        for (int i = 0; i < 20; i++) await ingest.RequestStream.WriteAsync(new IngestRequest { Name = $"empty-{i}.png" });
        await ingest.RequestStream.CompleteAsync();
        await held!.Entered.Task.WaitAsync(Patience);

        for (int look = 0; look < 10; look++)
        {
            Assert.True(server.RequestMemory.Held >= 3 * 500 * 1024, $"{server.RequestMemory.Held} bytes charged while the three large files are held");
            await Task.Delay(30);
        }
        held.Release.SetResult();
        int results = 0;
        while (await ingest.ResponseStream.MoveNext().WaitAsync(Patience)) results++;
        Assert.Equal(23, results);
        Assert.Equal(0, server.RequestMemory.Held);
    }

    /// <summary>A case space whose ingest waits for <see cref="Release"/> once inside, holding its inference slot.</summary>
    private sealed class HeldIngestSpace(ICaseSpace inner) : ICaseSpace, IDisposable
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string ModelId => inner.ModelId;
        public int Dimensions => inner.Dimensions;
        public int MaxNeighbours => inner.MaxNeighbours;
        public QueryReader Queries => inner.Queries;
        public OperatingPoints OperatingPoints => inner.OperatingPoints;

        public async Task<IReadOnlyList<IngestItemResult>> IngestAsync(IReadOnlyList<IngestItem> items, CancellationToken cancellation)
        {
            Entered.TrySetResult();
            await Release.Task.WaitAsync(cancellation);
            return await inner.IngestAsync(items, cancellation);
        }

        public Task<Query> StoredQueryAsync(VolumeLevel level, string idOrUid, CancellationToken cancellation) => inner.StoredQueryAsync(level, idOrUid, cancellation);
        public Task<SearchResult> SearchAsync(Query query, SearchOptions options, CancellationToken cancellation) => inner.SearchAsync(query, options, cancellation);
        public Task<IReadOnlyList<string>> DeleteAsync(DeleteScope scope, string value, CancellationToken cancellation) => inner.DeleteAsync(scope, value, cancellation);
        public Task<CaseRecord> FindCaseAsync(string idOrKey, CancellationToken cancellation) => inner.FindCaseAsync(idOrKey, cancellation);
        public Task<CaseRecord> UpdateLabelsAsync(string idOrKey, bool replace, IReadOnlyCollection<string> add, IReadOnlyCollection<string> remove,
            CancellationToken cancellation) => inner.UpdateLabelsAsync(idOrKey, replace, add, remove, cancellation);
        public Task<CollectionStats> StatsAsync(CancellationToken cancellation) => inner.StatsAsync(cancellation);
        public Task<IReadOnlyDictionary<string, long>> LabelCountsAsync(CancellationToken cancellation) => inner.LabelCountsAsync(cancellation);
        public Task<long> CountAsync(CancellationToken cancellation) => inner.CountAsync(cancellation);
        public Task CheckpointAsync(CancellationToken cancellation) => inner.CheckpointAsync(cancellation);
        public void Dispose() => (inner as IDisposable)?.Dispose();
    }
}

/// <summary>`medsearch serve`'s limit flags and their environment variables, parsed as the command does.</summary>
public sealed class ServeLimitOptionsTests
{
    private static ServerOptions Parse(params string[] args) => ServeCommand.Options(ServeCommand.Parse(args));

    [Fact]
    public void The_limit_flags_set_the_server_options()
    {
        var options = Parse("--max-request-mb", "8", "--request-memory-mb", "5000", "--max-k", "50", "--inference-concurrency", "3", "--inference-queue", "0");
        Assert.Equal(8 * 1024 * 1024, options.MaxRequestBytes);
        Assert.Equal(5000L * 1024 * 1024, options.RequestMemoryBytes);
        Assert.Equal(50, options.Collection.MaxNeighbours);
        Assert.Equal(3, options.Inference.Concurrency);
        Assert.Equal(0, options.Inference.Queue);

        var defaults = Parse();
        Assert.Equal(ServerOptions.DefaultMaxRequestMb * 1024 * 1024, defaults.MaxRequestBytes);
        Assert.Null(defaults.RequestMemoryBytes);
        Assert.Equal(CollectionOptions.MaxNeighboursLimit, defaults.Collection.MaxNeighbours);
        Assert.Equal(new InferenceOptions(), defaults.Inference);
    }

    [Theory]
    [InlineData("--max-request-mb", "0")]
    [InlineData("--max-request-mb", "2048")]
    [InlineData("--max-request-mb", "1.5")]
    [InlineData("--request-memory-mb", "0")]
    [InlineData("--request-memory-mb", "1048577")]
    [InlineData("--max-k", "0")]
    [InlineData("--max-k", "1001")]
    [InlineData("--inference-concurrency", "0")]
    [InlineData("--inference-concurrency", "257")]
    [InlineData("--inference-queue", "-1")]
    [InlineData("--inference-queue", "10001")]
    [InlineData("--inference-queue", "many")]
    public void Impossible_values_are_usage_errors_naming_the_flag(string flag, string value)
    {
        var error = Assert.Throws<UsageException>(() => Parse(flag, value));
        Assert.StartsWith($"{flag} must be a whole number from ", error.Message);
        Assert.EndsWith($"got `{value}`", error.Message);
    }

    [Fact]
    public void A_request_memory_smaller_than_the_largest_request_is_refused_at_start_naming_both_flags()
    {
        var data = Path.Combine(Path.GetTempPath(), "medsearch-limits-tests", Guid.NewGuid().ToString("N"));
        var options = Parse("--data", data, "--max-request-mb", "8", "--request-memory-mb", "7");
        var error = Assert.Throws<ServerOptionsException>(() => MedSearchServer.Build(options));
        Assert.Equal("--request-memory-mb 7 is less than --max-request-mb 8: a request of the largest size allowed could never be accepted", error.Message);
        Assert.False(Directory.Exists(data), "refused before the data directory was made");
    }

    [Fact]
    public void Environment_variables_apply_when_the_flag_is_absent_and_a_bad_one_is_named()
    {
        try
        {
            Environment.SetEnvironmentVariable(ServerOptions.MaxKEnvironmentVariable, "20");
            Environment.SetEnvironmentVariable(ServerOptions.InferenceQueueEnvironmentVariable, "5");
            var options = Parse();
            Assert.Equal(20, options.Collection.MaxNeighbours);
            Assert.Equal(5, options.Inference.Queue);
            Assert.Equal(30, Parse("--max-k", "30").Collection.MaxNeighbours);

            Environment.SetEnvironmentVariable(ServerOptions.MaxKEnvironmentVariable, "5000");
            var error = Assert.Throws<UsageException>(() => Parse());
            Assert.StartsWith("$MEDSEARCH_MAX_K (for --max-k) must be a whole number from 1 to 1000", error.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(ServerOptions.MaxKEnvironmentVariable, null);
            Environment.SetEnvironmentVariable(ServerOptions.InferenceQueueEnvironmentVariable, null);
        }
    }
}
