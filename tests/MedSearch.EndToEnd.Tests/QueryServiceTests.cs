using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Storage.Records;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// A collection of synthetic cases with known header facts (modalities, body parts, patients with several
/// studies, ages, dates, labels), stored through the engine once; each test starts the real server on it.
/// Embeddings are clustered unit vectors rather than model outputs, so that a plain loop can be the oracle.
/// </summary>
public sealed class SyntheticCollectionFixture : IAsyncLifetime
{
    public const int Cases = 1500;
    public static readonly string[] Modalities = ["CT", "MR", "CR", "US"];
    public static readonly string[] BodyParts = ["CHEST", "HEAD", "ABDOMEN"];
    public static readonly string[] Labels = ["pneumonia", "nodule", "fracture"];
    public static readonly string[] ViewPositions = ["PA", "AP", "LATERAL"];
    public static readonly string[] Lateralities = ["L", "R"];

    public string Data { get; } = Path.Combine(Path.GetTempPath(), "medsearch-query-" + Guid.NewGuid().ToString("N")[..8]);
    public List<CaseRecord> Records { get; } = [];

    public Task InitializeAsync()
    {
        using var collection = Collection.Open(Data, new CollectionOptions());
        var random = new Random(2026);
        // A generator of its own for the view facts, so the other facts (and the tests built on them) stay as they were.
        var views = new Random(2027);
        int dims = collection.Dimensions;
        var centres = Enumerable.Range(0, 12).Select(_ => Unit(Enumerable.Range(0, dims).Select(_ => (float)random.NextDouble() - 0.5f).ToArray())).ToArray();
        var c = CultureInfo.InvariantCulture;
        string study = "", patient = "";
        for (int i = 0; i < Cases; i++)
        {
            // Patients have a few studies, studies a few instances: exclusions and grouping have something to do.
            if (i % 4 == 0) study = $"1.2.826.0.1.{i / 4}";
            if (i % 12 == 0) patient = $"p{i / 12:D4}";
            var centre = centres[random.Next(centres.Length)];
            var embedding = Unit(centre.Select(v => v + 0.35f * ((float)random.NextDouble() - 0.5f)).ToArray());
            var record = new CaseRecord
            {
                Id = CaseId.FromKey($"file:synthetic/{i:D4}.png"),
                Key = $"file:synthetic/{i:D4}.png",
                Source = $"synthetic/{i:D4}.png",
                ModelId = collection.ModelId,
            };
            record.Embedding.Add(embedding);
            record.Metadata["modality"] = Modalities[random.Next(Modalities.Length)];
            record.Metadata["body_part"] = BodyParts[random.Next(BodyParts.Length)];
            if (random.Next(10) > 0) record.Metadata["sex"] = random.Next(2) == 0 ? "M" : "F";
            if (random.Next(10) > 0) record.Metadata["age"] = (random.NextDouble() * 90).ToString("0.##", c);
            record.Metadata["study_date"] = new DateOnly(2015, 1, 1).AddDays(random.Next(3650)).ToString("yyyy-MM-dd", c);
            record.Metadata["study_instance_uid"] = study;
            record.Metadata["patient_hash"] = patient;
            record.Metadata["site"] = random.Next(2) == 0 ? "north" : "south";
            record.Metadata["view_position"] = ViewPositions[views.Next(ViewPositions.Length)];
            if (views.Next(4) > 0) record.Metadata["laterality"] = Lateralities[views.Next(Lateralities.Length)];
            foreach (var label in Labels)
                if (random.Next(3) == 0) record.Labels.Add(label);
            collection.Put(record);
            Records.Add(record);
        }
        collection.Checkpoint();
        return Task.CompletedTask;
    }

    public static float[] Unit(float[] v)
    {
        float norm = MathF.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }

    public Task<RunningServer> StartServerAsync() => RunningServer.StartAsync(Data);

    public Task DisposeAsync()
    {
        try { Directory.Delete(Data, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}

public sealed class QueryServiceTests(SyntheticCollectionFixture fixture) : IClassFixture<SyntheticCollectionFixture>
{
    private static float Dot(IEnumerable<float> a, IEnumerable<float> b) => a.Zip(b, (x, y) => x * y).Sum();

    /// <summary>The oracle: every record, tested condition by condition in plain code, sorted by true similarity.</summary>
    private List<(CaseRecord Record, float Similarity)> BruteForce(float[] query, SearchRequest request, CaseRecord? queryCase)
    {
        var f = request.Filter ?? new Filter();
        bool AnyOf(IEnumerable<string> wanted, string key, CaseRecord r) =>
            !wanted.Any() || (r.Metadata.TryGetValue(key, out var v) && wanted.Any(w => string.Equals(w, v, StringComparison.OrdinalIgnoreCase)));
        double Age(CaseRecord r) => r.Metadata.TryGetValue("age", out var a) ? double.Parse(a, CultureInfo.InvariantCulture) : double.NaN;
        string Date(CaseRecord r) => r.Metadata["study_date"];
        bool Passes(CaseRecord r) =>
            AnyOf(f.Modalities, "modality", r) && AnyOf(f.BodyParts, "body_part", r) && AnyOf(f.Sexes, "sex", r)
            && AnyOf(f.ViewPositions, "view_position", r) && AnyOf(f.Lateralities, "laterality", r)
            && (!f.HasMinAgeYears || Age(r) >= f.MinAgeYears) && (!f.HasMaxAgeYears || Age(r) <= f.MaxAgeYears)
            && (f.StudyDateFrom == "" || string.CompareOrdinal(Date(r), f.StudyDateFrom) >= 0)
            && (f.StudyDateTo == "" || string.CompareOrdinal(Date(r), f.StudyDateTo) <= 0)
            && (f.LabelsAny.Count == 0 || f.LabelsAny.Any(r.Labels.Contains))
            && f.LabelsAll.All(r.Labels.Contains) && !f.LabelsNone.Any(r.Labels.Contains)
            && f.Metadata.All(m => r.Metadata.TryGetValue(m.Key, out var v) && v == m.Value)
            && !(request.ExcludeQueryCase && r.Id == queryCase!.Id)
            && !(request.ExcludeSamePatient && r.Metadata["patient_hash"] == queryCase!.Metadata["patient_hash"])
            && !(request.ExcludeSameStudy && r.Metadata["study_instance_uid"] == queryCase!.Metadata["study_instance_uid"]);
        var ranked = fixture.Records.Where(Passes).Select(r => (Record: r, Similarity: Dot(query, r.Embedding))).OrderByDescending(h => h.Similarity).ToList();
        if (!request.OnePerStudy) return ranked;
        var seen = new HashSet<string>();
        return ranked.Where(h => seen.Add(h.Record.Metadata["study_instance_uid"])).ToList();
    }

    private static IEnumerable<SearchRequest> RandomRequests(Random random, IReadOnlyList<CaseRecord> records)
    {
        for (int i = 0; i < 60; i++)
        {
            var queryCase = records[random.Next(records.Count)];
            var request = new SearchRequest { K = random.Next(1, 25), Filter = new Filter() };
            if (random.Next(2) == 0) request.CaseId = queryCase.Key;
            else request.Embedding = new Protocol.V1.Embedding { Values = { queryCase.Embedding } };
            var f = request.Filter;
            if (random.Next(3) == 0) f.Modalities.Add(SyntheticCollectionFixture.Modalities[random.Next(4)].ToLowerInvariant());
            if (random.Next(4) == 0) f.BodyParts.Add(SyntheticCollectionFixture.BodyParts[random.Next(3)]);
            if (random.Next(4) == 0) f.Sexes.Add(random.Next(2) == 0 ? "M" : "f");
            if (random.Next(4) == 0) { f.MinAgeYears = random.Next(0, 50); f.MaxAgeYears = f.MinAgeYears + random.Next(5, 60); }
            int fromYear = 2015;
            if (random.Next(4) == 0) f.StudyDateFrom = $"{fromYear = random.Next(2015, 2024)}-0{random.Next(1, 10)}-15";
            // Never before the lower bound: that request is refused (A_bad_request_is_refused... covers it).
            if (random.Next(4) == 0) f.StudyDateTo = $"{random.Next(fromYear + 1, 2026)}-{random.Next(1, 13):D2}-{random.Next(1, 29):D2}";
            if (random.Next(4) == 0)
                f.ViewPositions.Add(SyntheticCollectionFixture.ViewPositions.OrderBy(_ => random.Next()).Take(random.Next(1, 3)).Select(v => random.Next(2) == 0 ? v.ToLowerInvariant() : v));
            if (random.Next(4) == 0) f.Lateralities.Add(random.Next(2) == 0 ? "L" : "r");
            if (random.Next(5) == 0) f.LabelsAny.Add(SyntheticCollectionFixture.Labels[random.Next(3)]);
            if (random.Next(5) == 0) f.LabelsAll.Add(SyntheticCollectionFixture.Labels[random.Next(3)]);
            if (random.Next(5) == 0) f.LabelsNone.Add(SyntheticCollectionFixture.Labels[random.Next(3)]);
            if (random.Next(5) == 0) f.Metadata["site"] = "north";
            if (request.QueryCase == SearchRequest.QueryOneofCase.CaseId)
            {
                request.ExcludeQueryCase = random.Next(2) == 0;
                request.ExcludeSamePatient = random.Next(3) == 0;
                request.ExcludeSameStudy = random.Next(3) == 0;
            }
            request.OnePerStudy = random.Next(3) == 0;
            yield return request;
        }
    }

    [Fact]
    public async Task Filters_exclusions_and_grouping_agree_with_a_brute_force_reference()
    {
        await using var server = await fixture.StartServerAsync();
        using var channel = GrpcChannel.ForAddress(server.Address);
        var client = new SearchService.SearchServiceClient(channel);
        var byKey = fixture.Records.ToDictionary(r => r.Key);
        double found = 0, expected = 0;
        foreach (var request in RandomRequests(new Random(5), fixture.Records))
        {
            var queryCase = request.QueryCase == SearchRequest.QueryOneofCase.CaseId ? byKey[request.CaseId] : null;
            var query = SyntheticCollectionFixture.Unit((queryCase ?? fixture.Records.First(r => r.Embedding.SequenceEqual(request.Embedding.Values))).Embedding.ToArray());
            var truth = BruteForce(query, request, queryCase);
            var response = await client.SearchAsync(request);
            var admissible = truth.ToDictionary(h => h.Record.Key, h => h.Similarity);

            // Exact about filters: every hit is admissible, with its true similarity, in order.
            foreach (var hit in response.Neighbours)
            {
                Assert.True(admissible.ContainsKey(hit.Key), $"{hit.Key} violates the request {request}");
                Assert.Equal(admissible[hit.Key], hit.Similarity, 4);
            }
            Assert.True(response.Neighbours.Zip(response.Neighbours.Skip(1)).All(p => p.First.Similarity >= p.Second.Similarity));
            if (request.OnePerStudy)
                Assert.Equal(response.Neighbours.Count, response.Neighbours.Select(n => byKey[n.Key].Metadata["study_instance_uid"]).Distinct().Count());
            // As many hits as exist, up to k; the approximate index may swap the odd near tie.
            Assert.Equal(Math.Min(request.K, truth.Count), response.Neighbours.Count);
            var best = truth.Take(request.K).Select(h => h.Record.Key).ToHashSet();
            found += response.Neighbours.Count(n => best.Contains(n.Key));
            expected += best.Count;
        }
        Assert.True(found / expected >= 0.97, $"recall against the brute-force reference is {found / expected:P1}");
    }

    [Theory]
    [InlineData(Protocol.V1.Weighting.Uniform)]
    [InlineData(Protocol.V1.Weighting.Similarity)]
    [InlineData(Protocol.V1.Weighting.Softmax)]
    public async Task Classify_scores_each_label_by_weighted_neighbours_and_decides_at_the_operating_point(Protocol.V1.Weighting weighting)
    {
        await using var server = await fixture.StartServerAsync();
        using var channel = GrpcChannel.ForAddress(server.Address);
        var client = new SearchService.SearchServiceClient(channel);
        var query = fixture.Records[17];
        var response = await client.ClassifyAsync(new ClassifyRequest
        {
            Search = new SearchRequest { CaseId = query.Key, K = 15, ExcludeQueryCase = true },
            Weighting = weighting,
            Temperature = 0.05,
        });
        Assert.Equal(15, response.Neighbours.Count);
        Assert.DoesNotContain(response.Neighbours, n => n.Key == query.Key);
        var labelled = response.Neighbours.Where(n => n.Labels.Count > 0).ToList();
        Assert.Equal(15 - labelled.Count, response.UnlabelledNeighbours);
        double top = response.Neighbours.Max(n => n.Similarity);
        double Weight(Protocol.V1.Neighbour n) => weighting switch
        {
            Protocol.V1.Weighting.Uniform => 1,
            Protocol.V1.Weighting.Similarity => Math.Max(0, n.Similarity),
            _ => Math.Exp((n.Similarity - top) / 0.05),
        };
        double total = labelled.Sum(Weight);
        foreach (var label in SyntheticCollectionFixture.Labels.Where(l => labelled.Any(n => n.Labels.Contains(l))))
        {
            var decision = Assert.Single(response.Labels, d => d.Label == label);
            double score = labelled.Where(n => n.Labels.Contains(label)).Sum(Weight) / total;
            Assert.Equal(score, decision.Score, 5);
            Assert.Equal(0.5, decision.Threshold);
            Assert.Equal("default", decision.OperatingPoint);
            Assert.Equal(score >= 0.5, decision.Positive);
            Assert.Equal(labelled.Count(n => n.Labels.Contains(label)), decision.Neighbours);
        }
    }

    [Fact]
    public async Task Get_stats_and_labels_describe_the_collection_and_relabelling_is_durable()
    {
        var target = fixture.Records[3];
        await using (var server = await fixture.StartServerAsync())
        {
            using var channel = GrpcChannel.ForAddress(server.Address);
            var cases = new CaseService.CaseServiceClient(channel);
            var collection = new CollectionService.CollectionServiceClient(channel);

            var info = await cases.GetAsync(new GetRequest { CaseId = target.Key, IncludeEmbedding = true });
            Assert.Equal(CaseId.Format(target.Id), info.CaseId);
            Assert.Equal(target.Labels, info.Labels);
            Assert.Equal(target.Embedding, info.Embedding);
            Assert.Equal(target.Metadata["site"], info.Metadata["site"]);
            Assert.Empty((await cases.GetAsync(new GetRequest { CaseId = info.CaseId })).Embedding);

            var stats = await collection.StatsAsync(new StatsRequest());
            Assert.Equal(SyntheticCollectionFixture.Cases, stats.Cases);
            Assert.Equal(SyntheticCollectionFixture.Cases, stats.Index.Indexed);
            foreach (var modality in SyntheticCollectionFixture.Modalities)
                Assert.Equal(fixture.Records.Count(r => r.Metadata["modality"] == modality), stats.CasesByModality[modality]);
            Assert.Equal(fixture.Records.Count(r => r.Labels.Count == 0), stats.UnlabelledCases);
            Assert.Equal("i8", stats.Index.Quantization);
            Assert.True(stats.StoreBytes > 0 && stats.IndexBytes > 0);
            var labels = await collection.ListLabelsAsync(new ListLabelsRequest());
            Assert.Equal(SyntheticCollectionFixture.Labels.Order(), labels.Labels.Select(l => l.Label));
            foreach (var label in labels.Labels)
                Assert.Equal(fixture.Records.Count(r => r.Labels.Contains(label.Label)), label.Cases);

            var updated = await cases.UpdateLabelsAsync(new UpdateLabelsRequest { CaseId = target.Key, Replace = true, Add = { "reviewed", "pneumonia" } });
            Assert.Equal(["reviewed", "pneumonia"], updated.Labels);
            updated = await cases.UpdateLabelsAsync(new UpdateLabelsRequest { CaseId = target.Key, Remove = { "pneumonia" }, Add = { "second-read" } });
            Assert.Equal(["reviewed", "second-read"], updated.Labels);
        }
        // After a restart the labels are still there, and label filters see them.
        await using (var server = await fixture.StartServerAsync())
        {
            using var channel = GrpcChannel.ForAddress(server.Address);
            var info = await new CaseService.CaseServiceClient(channel).GetAsync(new GetRequest { CaseId = target.Key });
            Assert.Equal(["reviewed", "second-read"], info.Labels);
            var hits = await new SearchService.SearchServiceClient(channel).SearchAsync(new SearchRequest
            {
                Embedding = new Protocol.V1.Embedding { Values = { target.Embedding } },
                K = 5,
                Filter = new Filter { LabelsAll = { "reviewed" } },
            });
            Assert.Equal(target.Key, Assert.Single(hits.Neighbours).Key);
            // Put back for the other tests of the class.
            await new CaseService.CaseServiceClient(channel).UpdateLabelsAsync(new UpdateLabelsRequest { CaseId = target.Key, Replace = true, Add = { target.Labels } });
        }
    }

    public static TheoryData<string, Action<SearchRequest>> BadRequests => new()
    {
        { "k", r => r.K = 0 },
        { "query", r => r.ClearQuery() },
        { "embedding", r => r.Embedding = new Protocol.V1.Embedding { Values = { 1f, 2f } } },
        { "filter.study_date_from", r => r.Filter = new Filter { StudyDateFrom = "2020-13-01" } },
        { "filter.min_age_years", r => r.Filter = new Filter { MinAgeYears = 50, MaxAgeYears = 20 } },
        { "filter.modalities", r => r.Filter = new Filter { Modalities = { " " } } },
        { "exclude_same_patient", r => r.ExcludeSamePatient = true },
        { "exclude_query_case", r => r.ExcludeQueryCase = true },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_bad_request_is_refused_naming_its_field_and_the_server_keeps_serving(string field, Action<SearchRequest> spoil)
    {
        await using var server = await fixture.StartServerAsync();
        using var channel = GrpcChannel.ForAddress(server.Address);
        var client = new SearchService.SearchServiceClient(channel);
        var request = new SearchRequest { Embedding = new Protocol.V1.Embedding { Values = { fixture.Records[0].Embedding } }, K = 3 };
        spoil(request);
        var error = await Assert.ThrowsAsync<RpcException>(async () => await client.SearchAsync(request));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith(field, error.Status.Detail);

        var missing = await Assert.ThrowsAsync<RpcException>(async () => await client.SearchAsync(new SearchRequest { CaseId = "file:no/such.png" }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        var temperature = await Assert.ThrowsAsync<RpcException>(async () => await client.ClassifyAsync(new ClassifyRequest
        {
            Search = new SearchRequest { CaseId = fixture.Records[0].Key },
            Weighting = Protocol.V1.Weighting.Softmax,
            Temperature = 0,
        }));
        Assert.StartsWith("temperature", temperature.Status.Detail);
        Assert.Equal(3, (await client.SearchAsync(new SearchRequest { CaseId = fixture.Records[0].Key, K = 3 })).Neighbours.Count);
    }

    [Fact]
    public async Task Bad_relabel_and_delete_requests_name_the_request_field_and_the_server_keeps_serving()
    {
        var target = fixture.Records[11];
        await using var server = await fixture.StartServerAsync();
        using var channel = GrpcChannel.ForAddress(server.Address);
        var cases = new CaseService.CaseServiceClient(channel);
        async Task Refused(StatusCode code, string field, Func<Task> call)
        {
            var error = await Assert.ThrowsAsync<RpcException>(call);
            Assert.Equal(code, error.StatusCode);
            Assert.StartsWith(field + ": ", error.Status.Detail);
        }

        // UpdateLabelsRequest has case_id, add and remove: no `labels`.
        await Refused(StatusCode.NotFound, "case_id", async () => await cases.UpdateLabelsAsync(new UpdateLabelsRequest { CaseId = "file:no/such.png", Add = { "x" } }));
        await Refused(StatusCode.InvalidArgument, "add", async () => await cases.UpdateLabelsAsync(new UpdateLabelsRequest { CaseId = target.Key, Add = { " padded" } }));
        await Refused(StatusCode.InvalidArgument, "remove", async () => await cases.UpdateLabelsAsync(new UpdateLabelsRequest { CaseId = target.Key, Remove = { "" } }));
        await Refused(StatusCode.InvalidArgument, "remove", async () =>
            await cases.UpdateLabelsAsync(new UpdateLabelsRequest { CaseId = target.Key, Replace = true, Add = { "x" }, Remove = { "nodule" } }));

        // Delete: what the case space refuses comes back naming the selector that was set.
        foreach (var (field, request) in new (string, DeleteRequest)[]
        {
            ("case_id", new() { CaseId = " " }), ("series_instance_uid", new() { SeriesInstanceUid = "\t" }),
            ("study_instance_uid", new() { StudyInstanceUid = " " }), ("patient_id", new() { PatientId = "  " }), ("patient_hash", new() { PatientHash = " " }),
        })
            await Refused(StatusCode.InvalidArgument, field, async () => await cases.DeleteAsync(request));
        await Refused(StatusCode.InvalidArgument, "selector", async () => await cases.DeleteAsync(new DeleteRequest()));
        // An unknown case is no error: deleting is idempotent, and says it deleted nothing.
        Assert.Equal(0, (await cases.DeleteAsync(new DeleteRequest { CaseId = "file:no/such.png" })).Deleted);

        // Nothing was changed, and the server still serves.
        Assert.Equal(target.Labels, (await cases.GetAsync(new GetRequest { CaseId = target.Key })).Labels);
        Assert.Equal(SyntheticCollectionFixture.Cases, (await new CollectionService.CollectionServiceClient(channel).StatsAsync(new StatsRequest())).Cases);
        Assert.Equal(3, (await new SearchService.SearchServiceClient(channel).SearchAsync(new SearchRequest { CaseId = target.Key, K = 3 })).Neighbours.Count);
    }

    [Fact]
    public async Task Server_reflection_lists_the_services_and_describes_the_search_service()
    {
        await using var server = await fixture.StartServerAsync();
        using var channel = GrpcChannel.ForAddress(server.Address);
        using var call = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("medsearch.v1.SearchService", services);
        Assert.Contains("medsearch.v1.CaseService", services);
        Assert.Contains("medsearch.v1.CollectionService", services);

        // A client such as grpcurl then asks for the file defining the service, to learn its methods.
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = "medsearch.v1.SearchService" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var files = call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto
            .Select(bytes => Google.Protobuf.Reflection.FileDescriptorProto.Parser.ParseFrom(bytes)).ToList();
        var search = Assert.Single(files.SelectMany(f => f.Service), s => s.Name == "SearchService");
        Assert.Contains(search.Method, m => m.Name == "Search");
    }

    [Fact]
    public async Task An_embedding_naming_another_model_is_refused_as_not_comparable_and_the_server_keeps_serving()
    {
        var target = fixture.Records[7];
        const string other = "other-model@0123456789ab";
        await using var server = await RunningServer.StartAsync(fixture.Data, page: true);
        using var channel = GrpcChannel.ForAddress(server.Address);
        var client = new SearchService.SearchServiceClient(channel);
        SearchRequest Query(string modelId) => new() { Embedding = new Protocol.V1.Embedding { Values = { target.Embedding }, ModelId = modelId }, K = 3 };

        // The collection's own model id (as Stats and every response report it) searches as an unnamed vector does.
        string modelId = (await new CollectionService.CollectionServiceClient(channel).StatsAsync(new StatsRequest())).ModelId;
        Assert.Equal(target.ModelId, modelId);
        var named = await client.SearchAsync(Query(modelId));
        Assert.Equal(target.Key, named.Neighbours[0].Key);
        Assert.Equal(modelId, named.ModelId);

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.SearchAsync(Query(other)));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.StartsWith("embedding.model_id: ", refused.Status.Detail);
        Assert.Contains(other, refused.Status.Detail);
        Assert.Contains(modelId, refused.Status.Detail);
        Assert.Contains("not comparable", refused.Status.Detail);

        var classify = await Assert.ThrowsAsync<RpcException>(async () => await client.ClassifyAsync(new ClassifyRequest { Search = Query(other) }));
        Assert.Equal(StatusCode.FailedPrecondition, classify.StatusCode);
        Assert.StartsWith("search.embedding.model_id: ", classify.Status.Detail);
        Assert.Contains(other, classify.Status.Detail);
        Assert.Contains(modelId, classify.Status.Detail);

        // Served afterwards; an empty model id is not checked, so clients that never set it keep working.
        var unnamed = await client.SearchAsync(Query(""));
        Assert.Equal(named.Neighbours.Select(n => n.Key), unnamed.Neighbours.Select(n => n.Key));
        Assert.Equal(3, (await client.ClassifyAsync(new ClassifyRequest { Search = Query(modelId) })).Neighbours.Count);

        // JSON transcoding: the field is `modelId`.
        using var http = new HttpClient { BaseAddress = new Uri(server.PageAddress) };
        async Task<HttpResponseMessage> Json(string id) => await http.PostAsync("/v1/search", new StringContent(
            System.Text.Json.JsonSerializer.Serialize(new { embedding = new { values = target.Embedding, modelId = id }, k = 3 }),
            System.Text.Encoding.UTF8, "application/json"));
        using (var ok = await Json(modelId))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, ok.StatusCode);
            using var json = System.Text.Json.JsonDocument.Parse(await ok.Content.ReadAsStringAsync());
            Assert.Equal(target.Key, json.RootElement.GetProperty("neighbours")[0].GetProperty("key").GetString());
        }
        using (var wrong = await Json(other))
        {
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, wrong.StatusCode);
            Assert.Contains("embedding.model_id", await wrong.Content.ReadAsStringAsync());
        }
    }
}
