using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

public sealed class SearchEndToEndTests(IndexedCollectionFixture fixture) : IClassFixture<IndexedCollectionFixture>
{
    private const string Data = MedMnistFolder.BreastMnist;

    private static SearchService.SearchServiceClient Client(RunningServer server, out GrpcChannel channel)
    {
        channel = GrpcChannel.ForAddress(server.Address);
        return new SearchService.SearchServiceClient(channel);
    }

    private string ImagePath(int i) => Path.Combine(fixture.Images, "train", $"{i:D4}.png");

    private async Task<SearchResponse> SearchFile(SearchService.SearchServiceClient client, int i, int k = 10) =>
        await client.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(await File.ReadAllBytesAsync(ImagePath(i))), K = k });

    /// <summary>What a user would compare before and after: ids and similarities of the neighbours of some images.</summary>
    private async Task<List<string>> Answers(SearchService.SearchServiceClient client)
    {
        var answers = new List<string>();
        for (int i = 0; i < IndexedCollectionFixture.ImageCount; i += 10)
        {
            var response = await SearchFile(client, i, k: 5);
            answers.Add(string.Join(" ", response.Neighbours.Select(n => $"{n.CaseId}:{n.Similarity:F5}:{string.Join(';', n.Labels)}")));
        }
        return answers;
    }

    [SharedDataFact(Data)]
    public void Index_run_stores_every_image_and_says_so()
    {
        var run = fixture.FirstIndexRun;
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("indexed:   200", run.Output);
        Assert.Contains("failed:    0", run.Output);
        Assert.Contains("200 cases stored", run.Output);
        // Not a terminal: plain progress lines, never carriage-return redraws.
        Assert.Contains("progress: 200/200 images", run.Output);
        Assert.DoesNotContain("\r", run.Output);
    }

    [SharedDataFact(Data)]
    public async Task Every_indexed_image_finds_itself_first_with_its_labels()
    {
        var labels = LabelsFile.Load(fixture.LabelsCsv);
        await using var server = await fixture.StartServerAsync();
        var client = Client(server, out var channel);
        using var _ = channel;
        for (int i = 0; i < IndexedCollectionFixture.ImageCount; i++)
        {
            var response = await SearchFile(client, i);
            Assert.Equal(10, response.Neighbours.Count);
            var top = response.Neighbours[0];
            var key = CaseId.FileKey($"train/{i:D4}.png");
            Assert.Equal(key, top.Key);
            Assert.True(top.Similarity >= 0.999f, $"{key}: self-similarity {top.Similarity}");
            Assert.Equal(labels.Find(key)!.Labels, top.Labels);
            Assert.Equal("train", top.Metadata["split"]);
            Assert.Equal(Enumerable.Range(1, 10), response.Neighbours.Select(n => n.Rank));
            for (int r = 1; r < response.Neighbours.Count; r++)
                Assert.True(response.Neighbours[r - 1].Similarity >= response.Neighbours[r].Similarity, $"{key}: neighbours not sorted");
            Assert.Equal(1.0, response.Votes.Sum(v => v.Score), 9);
            Assert.Equal(10, response.Votes.Sum(v => v.Neighbours));
        }
    }

    [SharedDataFact(Data)]
    public async Task Thumbnails_come_with_the_hits_only_when_asked_and_show_the_stored_image()
    {
        await using var server = await fixture.StartServerAsync();
        var client = Client(server, out var channel);
        using var _ = channel;
        var bytes = await File.ReadAllBytesAsync(ImagePath(3));
        var plain = await client.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(bytes), K = 5 });
        Assert.All(plain.Neighbours, n => Assert.True(n.Thumbnail.IsEmpty));

        var withThumbnails = await client.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(bytes), K = 5, IncludeThumbnails = true });
        Assert.All(withThumbnails.Neighbours, n => Assert.Equal(Imaging.ImageFormat.Png, Imaging.ImageReader.Detect(n.Thumbnail.Span)));
        // BreastMNIST images are 28x28, under the thumbnail size: the thumbnail holds the image's own pixels.
        var thumbnail = Imaging.ImageReader.Read(withThumbnails.Neighbours[0].Thumbnail.Memory, "thumbnail").Frames.Single().Image;
        var original = Imaging.ImageReader.Read(bytes, "original").Frames.Single().Image;
        Assert.Equal((original.Width, original.Height), (thumbnail.Width, thumbnail.Height));
        Assert.Equal(original.Pixels, thumbnail.Pixels);
    }

    [SharedDataFact(Data)]
    public async Task Search_by_stored_case_id_can_leave_the_case_out()
    {
        await using var server = await fixture.StartServerAsync();
        var client = Client(server, out var channel);
        using var _ = channel;
        var key = CaseId.FileKey("train/0007.png");
        var with = await client.SearchAsync(new SearchRequest { CaseId = key, K = 5 });
        Assert.Equal(key, with.Neighbours[0].Key);
        var without = await client.SearchAsync(new SearchRequest { CaseId = with.Neighbours[0].CaseId, K = 5, ExcludeQueryCase = true });
        Assert.DoesNotContain(without.Neighbours, n => n.Key == key);
        Assert.Equal(with.Neighbours.Skip(1).Select(n => n.CaseId), without.Neighbours.Take(4).Select(n => n.CaseId));
    }

    [SharedDataFact(Data)]
    public async Task A_restarted_server_gives_the_same_answers()
    {
        List<string> before, after;
        await using (var server = await fixture.StartServerAsync())
        {
            var client = Client(server, out var channel);
            using var _ = channel;
            before = await Answers(client);
        }
        await using (var server = await fixture.StartServerAsync())
        {
            var client = Client(server, out var channel);
            using var _ = channel;
            after = await Answers(client);
        }
        Assert.Equal(before, after);
    }

    [SharedDataFact(Data)]
    public async Task Indexing_the_same_folder_again_duplicates_nothing()
    {
        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", fixture.Images, "--labels", fixture.LabelsCsv, "--data", fixture.Data);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("indexed:   0", run.Output);
        Assert.Contains("unchanged: 200", run.Output);
        Assert.Contains("200 cases stored", run.Output);
    }

    [SharedDataFact(Data)]
    public async Task Bad_requests_get_invalid_argument_with_the_reason_and_change_nothing()
    {
        await using var server = await fixture.StartServerAsync();
        var client = Client(server, out var channel);
        using var _ = channel;
        var before = await Answers(client);
        var png = await File.ReadAllBytesAsync(ImagePath(3));

        async Task Expect(StatusCode code, string reason, SearchRequest request)
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await client.SearchAsync(request));
            Assert.Equal(code, e.StatusCode);
            Assert.Contains(reason, e.Status.Detail);
        }

        await Expect(StatusCode.InvalidArgument, "empty (0 bytes)", new SearchRequest { Image = ByteString.Empty });
        await Expect(StatusCode.InvalidArgument, "not a PNG, JPEG or DICOM", new SearchRequest { Image = ByteString.CopyFromUtf8("patient notes, not pixels") });
        await Expect(StatusCode.InvalidArgument, "truncated", new SearchRequest { Image = ByteString.CopyFrom(png, 0, png.Length / 2), ImageName = "half.png" });
        await Expect(StatusCode.InvalidArgument, "k: must be between 1 and 1000, got 0", new SearchRequest { Image = ByteString.CopyFrom(png), K = 0 });
        await Expect(StatusCode.InvalidArgument, "k: must be between 1 and 1000, got -3", new SearchRequest { Image = ByteString.CopyFrom(png), K = -3 });
        await Expect(StatusCode.InvalidArgument, "k: must be between 1 and 1000, got 1001", new SearchRequest { Image = ByteString.CopyFrom(png), K = 1001 });
        await Expect(StatusCode.InvalidArgument, "query: set `image`", new SearchRequest { K = 5 });
        await Expect(StatusCode.NotFound, "no stored case", new SearchRequest { CaseId = "file:nope.png" });

        // The server is still serving, and serving the same answers.
        Assert.Equal(before, await Answers(client));
    }

    [SharedDataFact(Data)]
    public async Task Bad_files_are_named_with_their_reason_and_change_nothing()
    {
        List<string> before;
        await using (var server = await fixture.StartServerAsync())
        {
            var client = Client(server, out var channel);
            using var _ = channel;
            before = await Answers(client);
        }

        var bad = Path.Combine(fixture.Root, "bad");
        Directory.CreateDirectory(bad);
        var png = await File.ReadAllBytesAsync(ImagePath(0));
        await File.WriteAllTextAsync(Path.Combine(bad, "report.png"), "this is a radiology report, not an image");
        await File.WriteAllBytesAsync(Path.Combine(bad, "truncated.png"), png[..(png.Length / 2)]);
        await File.WriteAllBytesAsync(Path.Combine(bad, "empty.jpg"), []);
        await File.WriteAllTextAsync(Path.Combine(bad, "notes.txt"), "skip me");

        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", bad, "--data", fixture.Data);
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("failed:    3", run.Output);
        Assert.Matches(@"report\.png: not a PNG, JPEG or DICOM image", run.Output);
        Assert.Matches(@"truncated\.png: .*truncated", run.Output);
        Assert.Matches(@"empty\.jpg: the file is empty", run.Output);
        Assert.Contains("1 x not an image (.txt, no PNG, JPEG or DICOM signature)", run.Output);
        Assert.Contains("200 cases stored", run.Output);

        await using (var server = await fixture.StartServerAsync())
        {
            var client = Client(server, out var channel);
            using var _ = channel;
            Assert.Equal(before, await Answers(client));
        }
    }

    [SharedDataFact(Data)]
    public async Task Cli_query_prints_neighbours_and_votes_and_a_second_writer_is_refused()
    {
        await using var server = await fixture.StartServerAsync();
        var query = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "query", ImagePath(5), "--server", server.Address, "-k", "3");
        Assert.True(query.ExitCode == 0, query.ToString());
        Assert.Matches(@"\n\s+1\s+1\.0000\s+[0-9a-f]{16}\s+\S+\s+.*train/0005\.png", query.Output);
        Assert.Contains("neighbour vote:", query.Output);

        var badK = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "query", ImagePath(5), "--server", server.Address, "-k", "0");
        Assert.Equal(1, badK.ExitCode);
        Assert.Contains("InvalidArgument: k: must be between 1 and 1000, got 0", badK.Error);

        var second = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(2), "index", fixture.Images, "--data", fixture.Data);
        Assert.True(second.ExitCode == 1, second.ToString());
        Assert.Contains("in use by another MedSearch process", second.Error);
    }

    /// <summary>The search page is the server's own static files, with nothing fetched from elsewhere, and the preview it shows comes from the JSON route.</summary>
    [SharedDataFact(Data)]
    public async Task The_search_page_is_served_self_contained_and_the_json_route_returns_the_query_preview()
    {
        await using var server = await RunningServer.StartAsync(fixture.Data, page: true);
        using var http = new HttpClient { BaseAddress = new Uri(server.PageAddress) };
        foreach (var (path, type) in new[] { ("/", "text/html"), ("/app.js", "text/javascript"), ("/app.css", "text/css") })
        {
            using var response = await http.GetAsync(path);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(type, response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("default-src 'self'", response.Headers.GetValues("Content-Security-Policy").Single());
            var text = await response.Content.ReadAsStringAsync();
            // No CDN, font service or other origin: hospital networks are closed.
            Assert.DoesNotMatch(@"(src|href)\s*=\s*[""']?(https?:)?//|url\(\s*[""']?(https?:)?//|@import|from\s+[""']https?:", text);
        }

        var body = System.Text.Json.JsonSerializer.Serialize(new
        {
            search = new { image = Convert.ToBase64String(await File.ReadAllBytesAsync(ImagePath(3))), k = 4, includeThumbnails = true, includeQueryPreview = true },
            weighting = "WEIGHTING_SIMILARITY",
        });
        using var classify = await http.PostAsync("/v1/classify", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.OK, classify.StatusCode);
        using var json = System.Text.Json.JsonDocument.Parse(await classify.Content.ReadAsStringAsync());
        var preview = Convert.FromBase64String(json.RootElement.GetProperty("queryPreview").GetString()!);
        using var bitmap = SkiaSharp.SKBitmap.Decode(preview);
        Assert.Equal((28, 28), (bitmap.Width, bitmap.Height));
        Assert.Equal(4, json.RootElement.GetProperty("neighbours").GetArrayLength());
        Assert.Equal("file:train/0003.png", json.RootElement.GetProperty("neighbours")[0].GetProperty("key").GetString());
    }
}

public sealed class CliHelpTests
{
    [Theory]
    [InlineData("index", "usage: medsearch index PATH")]
    [InlineData("serve", "usage: medsearch serve")]
    [InlineData("query", "usage: medsearch query IMAGE")]
    public async Task Every_verb_has_help(string verb, string expected)
    {
        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), verb, "--help");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains(expected, run.Output);
    }

    [Fact]
    public async Task Unknown_verbs_and_options_are_usage_errors()
    {
        var verb = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "frobnicate");
        Assert.Equal(2, verb.ExitCode);
        Assert.Contains("unknown verb `frobnicate`", verb.Error);
        var option = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(1), "index", ".", "--lables", "x.csv");
        Assert.Equal(2, option.ExitCode);
        Assert.Contains("unknown option --lables", option.Error);
    }
}
