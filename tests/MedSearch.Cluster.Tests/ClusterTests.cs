using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Server.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MedSearch.EndToEnd.Tests;
using MedSearch.Engine;
using MedSearch.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace MedSearch.Cluster.Tests;

/// <summary>
/// Three silos and eight shards against one node holding the same files: the same top k with exact search, at
/// instance, series and study level, with filters and one-per-study; and a silo killed during ingest and during
/// queries loses no acknowledged case, flags what it cannot answer, and answers as the single node after failover.
/// </summary>
public sealed class ClusterTests(ClusterData data, ITestOutputHelper output) : IClassFixture<ClusterData>
{
    private const int Silos = 3;
    private const int Shards = 8;

    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task Three_silos_and_eight_shards_answer_as_one_node()
    {
        Assert.True(data.Available);
        await using var cluster = await TestShardCluster.StartAsync(Path.Combine(data.Root, "cluster-equal"), Silos, Shards, data.Reference.Queries.Encoder);
        var space = cluster.Space;
        foreach (var group in data.Items.Chunk(16))
            Assert.All(await space.IngestAsync(group, CancellationToken.None), r => Assert.True(r.Outcome == ItemOutcome.Indexed, r.Reason));

        // Spread: every silo owns shards, every shard holds cases, and each study lies in one shard.
        var owners = cluster.Owners();
        output.WriteLine(string.Join("; ", owners.Select(o => $"{o.Key}: shards {string.Join(",", o.Value.Order())}")));
        Assert.Equal(Silos, owners.Count);
        Assert.All(owners.Values, shards => Assert.NotEmpty(shards));
        Assert.Equal(Shards, owners.Values.Sum(s => s.Count));

        await SameStatsAsync(data.Reference, space);
        foreach (var key in data.QueryKeys(16))
        {
            var query = await space.StoredQueryAsync(VolumeLevel.Instance, key, CancellationToken.None);
            Assert.Equal((await data.Reference.StoredQueryAsync(VolumeLevel.Instance, key, CancellationToken.None)).Embedding, query.Embedding);
            foreach (var options in new[]
            {
                new SearchOptions { K = 10, Exact = true },
                new SearchOptions { K = 25, Exact = true, OnePerStudy = true },
                new SearchOptions { K = 5, Exact = true, ExcludeQueryCase = true, Filter = new CaseFilter { Modalities = ["CT"] } },
                new SearchOptions { K = 8, Exact = true, Filter = new CaseFilter { LabelsAny = ["malignant"] } },
            })
                await SameSearchAsync(data.Reference, space, query, options, key);
        }

        // A query image as bytes, embedded once at the gateway.
        var image = data.Items.First(i => i.Name.EndsWith(".png", StringComparison.Ordinal));
        await SameSearchAsync(data.Reference, space, space.Queries.Image(image.Bytes, image.Name), new SearchOptions { K = 10, Exact = true }, image.Name);

        // Series and study level: each volume is whole on its shard, so its pooled vector is the single node's.
        foreach (var level in new[] { VolumeLevel.Series, VolumeLevel.Study })
        {
            var volumes = data.Reference.Collection.Cases(level).Select(c => c.Key).ToList();
            Assert.Equal(ClusterData.Volumes, volumes.Count);
            foreach (var key in volumes.Take(4))
            {
                var query = await space.StoredQueryAsync(level, key, CancellationToken.None);
                Assert.Equal((await data.Reference.StoredQueryAsync(level, key, CancellationToken.None)).Embedding, query.Embedding);
                await SameSearchAsync(data.Reference, space, query, new SearchOptions { K = 5 }, key);
            }
        }

        // Refusals read as a single node's.
        var missing = await Assert.ThrowsAsync<CaseNotFoundException>(() => space.StoredQueryAsync(VolumeLevel.Instance, "no-such-case", CancellationToken.None));
        Assert.Contains("no-such-case", missing.Message);
        var noPatient = await Assert.ThrowsAsync<ArgumentException>(() => space.SearchAsync(space.Queries.Image(image.Bytes, image.Name),
            new SearchOptions { K = 3, ExcludeSamePatient = true }, CancellationToken.None));
        var single = await Assert.ThrowsAsync<ArgumentException>(() => data.Reference.SearchAsync(space.Queries.Image(image.Bytes, image.Name),
            new SearchOptions { K = 3, ExcludeSamePatient = true }, CancellationToken.None));
        Assert.Equal(single.Message.Replace($" (Parameter '{single.ParamName}')", ""), noPatient.Message);

        // The same gRPC API as a single node, served over the cluster.
        var app = MedSearchServer.Build(new ServerOptions { DataPath = Path.Combine(data.Root, "unused"), Urls = "http://127.0.0.1:0" }, space);
        await app.StartAsync();
        try
        {
            using var channel = GrpcChannel.ForAddress(app.Services.GetRequiredService<Listeners>().Urls(ListenerRole.Grpc).Single());
            var search = new SearchService.SearchServiceClient(channel);
            var found = await search.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(image.Bytes.Span), K = 5 });
            Assert.False(found.Partial);
            Assert.Empty(found.Missing);
            Assert.Equal("ingest:" + image.Name, found.Neighbours[0].Key);
            Assert.True(found.Neighbours[0].Similarity >= 0.999f);
            Assert.Equal(1.0, found.Votes.Sum(v => v.Score), 6);
            // Thumbnails cross from the shards when asked for.
            var withThumbnails = await search.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(image.Bytes.Span), K = 5, IncludeThumbnails = true });
            Assert.All(withThumbnails.Neighbours, n => Assert.Equal(Imaging.ImageFormat.Png, Imaging.ImageReader.Detect(n.Thumbnail.Span)));
            var stats = await new CollectionService.CollectionServiceClient(channel).StatsAsync(new StatsRequest());
            Assert.Equal(data.Items.Count, stats.Cases);
            Assert.Equal(ClusterData.Volumes, stats.Studies);

            // A study deleted through the gateway leaves every shard, and only that study goes.
            var study = data.Reference.Collection.Cases(VolumeLevel.Study).First().Metadata["study_instance_uid"];
            var deleted = await new CaseService.CaseServiceClient(channel).DeleteAsync(new DeleteRequest { StudyInstanceUid = study });
            Assert.Equal(ClusterData.SlicesPerVolume, deleted.Deleted);
            Assert.Equal(data.Items.Count - ClusterData.SlicesPerVolume, (await space.StatsAsync(CancellationToken.None)).Cases);
            var notFound = await Assert.ThrowsAsync<RpcException>(async () => await search.SearchAsync(new SearchRequest { CaseId = deleted.Keys[0] }));
            Assert.Equal(StatusCode.NotFound, notFound.StatusCode);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [SharedDataFact(MedMnistFolder.BreastMnist)]
    public async Task A_silo_killed_during_ingest_and_queries_loses_no_acknowledged_case_and_fails_over()
    {
        Assert.True(data.Available);
        await using var cluster = await TestShardCluster.StartAsync(Path.Combine(data.Root, "cluster-kill"), Silos, Shards, data.Reference.Queries.Encoder,
            new ShardTimeouts { Search = TimeSpan.FromSeconds(2), Write = TimeSpan.FromSeconds(60) });
        var space = cluster.Space;
        int first = data.Items.Count * 2 / 3;
        foreach (var group in data.Items.Take(first).Chunk(16))
            Assert.All(await space.IngestAsync(group, CancellationToken.None), r => Assert.True(r.Outcome == ItemOutcome.Indexed, r.Reason));

        // Queries run all along; during failover an answer may lack shards, but then it says which.
        var queryKeys = data.QueryKeys(6).ToList();
        var queryEmbedding = (await data.Reference.StoredQueryAsync(VolumeLevel.Instance, queryKeys[0], CancellationToken.None)).Embedding;
        using var stop = new CancellationTokenSource();
        var partial = new ConcurrentBag<string>();
        int answered = 0;
        var queries = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var result = await space.SearchAsync(new Query(queryEmbedding), new SearchOptions { K = 10, Exact = true }, CancellationToken.None);
                Interlocked.Increment(ref answered);
                if (result.Partial) foreach (var m in result.Missing!) partial.Add(m);
                else Assert.Equal(10, result.Neighbours.Count);
                await Task.Delay(20);
            }
        });

        // The rest in groups of 8, re-sent until acknowledged; a silo is killed after the second group.
        var acknowledged = new List<string>();
        int resent = 0;
        var victim = cluster.Silos.Silos[1];
        var victimShards = cluster.Owners()[victim.SiloAddress.ToString()];
        Assert.NotEmpty(victimShards);
        int sent = 0;
        foreach (var group in data.Items.Skip(first).Chunk(8))
        {
            bool kill = sent++ == 2;
            var pending = group.ToList();
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (pending.Count > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, $"ingest not acknowledged two minutes after the kill: {string.Join(", ", pending.Select(p => p.Name))}");
                var ingest = space.IngestAsync(pending, CancellationToken.None);
                if (kill)
                {
                    // While the group is being embedded and stored on its shards.
                    await Task.Delay(150);
                    await cluster.Silos.KillSiloAsync(victim);
                    kill = false;
                }
                var results = await ingest;
                var again = new List<IngestItem>();
                for (int i = 0; i < pending.Count; i++)
                {
                    if (results[i].Outcome is ItemOutcome.Indexed or ItemOutcome.Updated or ItemOutcome.Unchanged) acknowledged.Add(results[i].Key!);
                    else
                    {
                        Assert.Contains("send it again", results[i].Reason);
                        again.Add(pending[i]);
                    }
                }
                resent += again.Count;
                pending = again;
                if (pending.Count > 0) await Task.Delay(500);
            }
        }
        output.WriteLine($"killed {victim.SiloAddress} (shards {string.Join(",", victimShards)}); {resent} file(s) re-sent; {partial.Count} partial answers of {answered}");
        Assert.True(answered > 0);

        // After failover: every case is there and the answers are the single node's.
        await WaitCompleteAsync(space);
        foreach (var key in acknowledged) Assert.Equal(key, (await space.FindCaseAsync(key, CancellationToken.None)).Key);
        await SameStatsAsync(data.Reference, space);
        foreach (var key in queryKeys)
            await SameSearchAsync(data.Reference, space, await space.StoredQueryAsync(VolumeLevel.Instance, key, CancellationToken.None),
                new SearchOptions { K = 10, Exact = true }, key);
        Assert.All(partial, m => Assert.Matches(@"^shard \d+ of 8 ", m));

        // A second silo killed during queries alone: the last one takes every shard over.
        partial.Clear();
        var second = cluster.Silos.Silos.Skip(1).Single();
        await cluster.Silos.KillSiloAsync(second);
        await WaitCompleteAsync(space);
        stop.Cancel();
        await queries;
        Assert.Equal(Shards, cluster.Owners().Single().Value.Count);
        foreach (var key in queryKeys)
            await SameSearchAsync(data.Reference, space, await space.StoredQueryAsync(VolumeLevel.Instance, key, CancellationToken.None),
                new SearchOptions { K = 10, Exact = true }, key);
    }

    /// <summary>Until a search comes back from every shard (a killed silo's shards reopened elsewhere).</summary>
    private static async Task WaitCompleteAsync(ClusterCaseSpace space)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        var probe = new Query([.. Enumerable.Repeat(1f, space.Dimensions)]);
        while (true)
        {
            var result = await space.SearchAsync(probe, new SearchOptions { K = 1 }, CancellationToken.None);
            if (!result.Partial) return;
            Assert.True(DateTime.UtcNow < deadline, "still partial two minutes after the kill: " + string.Join("; ", result.Missing!));
            await Task.Delay(250);
        }
    }

    private static async Task SameStatsAsync(ICaseSpace expected, ICaseSpace actual)
    {
        var e = await expected.StatsAsync(CancellationToken.None);
        var a = await actual.StatsAsync(CancellationToken.None);
        Assert.Equal(e.Cases, a.Cases);
        Assert.Equal(e.Series, a.Series);
        Assert.Equal(e.Studies, a.Studies);
        Assert.Equal(e.CasesByLabel, a.CasesByLabel);
        Assert.Equal(e.CasesByModality, a.CasesByModality);
        Assert.Equal(e.Cases, a.Indexed);
    }

    /// <summary>
    /// Same similarities rank by rank and the same cases; cases of equal similarity may swap, and where a tie straddles
    /// the k-th place either may be kept (the AdrenalMNIST3D masks have identical empty slices), so there each kept
    /// case must be a stored case at exactly that similarity.
    /// </summary>
    private static async Task SameSearchAsync(ICaseSpace expected, ICaseSpace actual, Query query, SearchOptions options, string what)
    {
        var e = await expected.SearchAsync(query, options, CancellationToken.None);
        var a = await actual.SearchAsync(query, options, CancellationToken.None);
        Assert.False(a.Partial, $"{what}: partial ({string.Join("; ", a.Missing ?? [])})");
        Assert.True(e.Neighbours.Count == a.Neighbours.Count, $"{what} ({options}): {e.Neighbours.Count} neighbours on one node, {a.Neighbours.Count} on the cluster");
        if (e.Neighbours.Count == 0) return;
        for (int i = 0; i < e.Neighbours.Count; i++)
        {
            Assert.Equal(e.Neighbours[i].Similarity, a.Neighbours[i].Similarity, 5);
            Assert.Equal(i + 1, a.Neighbours[i].Rank);
            // An instance hit comes without its embedding (a series or study hit keeps its pooled one): read it back.
            var hit = a.Neighbours[i].Case;
            var embedding = hit.Embedding.Count > 0 ? hit.Embedding : (await actual.FindCaseAsync(hit.Key, CancellationToken.None)).Embedding;
            var similarity = System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(query.Embedding, embedding.ToArray());
            Assert.True(Math.Abs(similarity - a.Neighbours[i].Similarity) < 0.01, $"{what}: {a.Neighbours[i].Case.Key} reported at {a.Neighbours[i].Similarity}, its embedding gives {similarity}");
        }
        // One per study keeps one of a study's equally similar slices, not always the same one: compare studies there.
        string Identity(Engine.Neighbour n) => options.OnePerStudy ? n.Case.Metadata.GetValueOrDefault("study_instance_uid") ?? n.Case.Key : n.Case.Key;
        float last = e.Neighbours[^1].Similarity;
        IEnumerable<string> Above(SearchResult r) => r.Neighbours.Where(n => n.Similarity > last + 1e-5f).Select(Identity).Order(StringComparer.Ordinal);
        Assert.Equal(Above(e), Above(a));
        if (!e.Neighbours.Select(n => n.Case.Key).Order(StringComparer.Ordinal).SequenceEqual(a.Neighbours.Select(n => n.Case.Key).Order(StringComparer.Ordinal))) return;
        Assert.Equal(e.Votes.Select(v => (v.Label, Math.Round(v.Score, 9))), a.Votes.Select(v => (v.Label, Math.Round(v.Score, 9))));
        Assert.Equal(e.UnlabelledNeighbours, a.UnlabelledNeighbours);
    }
}
