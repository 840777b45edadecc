using MedSearch.Index;
using MedSearch.Storage.Records;
using Xunit;

namespace MedSearch.Engine.Tests;

/// <summary>
/// The catalog's posting lists stay in step with its entries, and a search handed them as candidates returns what
/// the predicate alone returns, and what brute force over the catalog returns, even while cases change.
/// </summary>
public sealed class CatalogCandidateTests
{
    private const int Dimensions = 32;
    private static readonly string[] Modalities = ["MR", "CT", "CR", "US", "mr"];
    private static readonly string[] BodyParts = ["CHEST", "HEAD", "KNEE"];
    private static readonly string[] Labels = ["a", "b", "c", "d"];

    private static CaseRecord Record(ulong id, Random random)
    {
        var record = new CaseRecord { Id = id, Key = $"file:{id}.png" };
        // MR is rare (about 6 %, some of it spelt "mr"), the others common.
        double roll = random.NextDouble();
        record.Metadata["modality"] = roll < 0.04 ? "MR" : roll < 0.06 ? "mr" : Modalities[1 + random.Next(3)];
        if (random.Next(10) > 0) record.Metadata["body_part"] = BodyParts[random.Next(BodyParts.Length)];
        record.Metadata["sex"] = random.Next(2) == 0 ? "F" : "M";
        record.Metadata["age"] = random.Next(90).ToString(System.Globalization.CultureInfo.InvariantCulture);
        record.Metadata["patient_hash"] = $"p{random.Next(50)}";
        foreach (var label in Labels)
            if (random.Next(label == "d" ? 40 : 4) == 0) record.Labels.Add(label);
        return record;
    }

    private static float[] Vector(Random random)
    {
        var v = Enumerable.Range(0, Dimensions).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        float norm = MathF.Sqrt(v.Sum(x => x * x));
        return v.Select(x => x / norm).ToArray();
    }

    private static readonly CaseFilter[] Filters =
    [
        new() { Modalities = ["MR"] },
        new() { Modalities = ["mr", "MR"] },
        new() { Modalities = ["MR", "XA"], MinAge = 30 },
        new() { Modalities = ["XA"] },
        new() { BodyParts = ["chest"], Sexes = ["F"], LabelsAny = ["d"] },
        new() { LabelsAny = ["a", "d"], Modalities = ["MR", "CT"] },
        new() { LabelsAll = ["a", "b"], LabelsNone = ["c"] },
        new() { LabelsAny = ["a", "b", "c"], BodyParts = ["HEAD"], MaxAge = 40 },
        new() { MinAge = 80 },
    ];

    [Fact]
    public void Posting_lists_hold_exactly_the_ids_of_each_value()
    {
        var catalog = new CaseCatalog();
        var random = new Random(3);
        for (int round = 0; round < 3000; round++)
        {
            ulong id = (ulong)random.Next(400);
            if (random.Next(5) == 0) catalog.Remove(id);
            else catalog.Set(Record(id, random));
        }
        var entries = catalog.Entries.ToArray();
        foreach (var value in Modalities.Concat(["XA"]))
            AssertPosting(catalog, CatalogFact.Modality, value, entries.Where(e => string.Equals(e.Value.Modality, value, StringComparison.OrdinalIgnoreCase)));
        foreach (var value in BodyParts)
            AssertPosting(catalog, CatalogFact.BodyPart, value.ToLowerInvariant(), entries.Where(e => e.Value.BodyPart == value));
        foreach (var value in Labels)
            AssertPosting(catalog, CatalogFact.Label, value, entries.Where(e => e.Value.Labels.Contains(value)));
        Assert.Null(catalog.PostingOf(CatalogFact.Label, "A"));
    }

    private static void AssertPosting(CaseCatalog catalog, CatalogFact fact, string value, IEnumerable<KeyValuePair<ulong, CatalogEntry>> expected)
    {
        var ids = expected.Select(e => e.Key).Order().ToArray();
        var posting = catalog.PostingOf(fact, value);
        if (posting is null)
        {
            Assert.Empty(ids);
            return;
        }
        var copy = new ulong[posting.Count];
        Assert.Equal(ids.Length, Posting.CopyAll([posting], copy));
        Assert.Equal(ids, copy.Order().ToArray());
        Assert.Equal(ids.Length, Posting.CopyAll([posting], new ulong[ids.Length + 5]));
        if (ids.Length > 0) Assert.Equal(ids.Length, Posting.CopyAll([posting], new ulong[ids.Length - 1]));
    }

    [Fact]
    public void A_posting_list_matches_a_set_through_growth_removal_and_id_zero()
    {
        var posting = new Posting();
        var model = new HashSet<ulong>();
        var random = new Random(9);
        for (int step = 0; step < 200_000; step++)
        {
            // Few distinct ids, so that removal often hits a long probe run; small ones collide in the table.
            ulong id = step % 3 == 0 ? (ulong)random.Next(64) : (ulong)random.Next(5000) * 1024;
            if (random.Next(3) == 0)
            {
                posting.Remove(id);
                model.Remove(id);
            }
            else
            {
                posting.Add(id);
                model.Add(id);
            }
            Assert.Equal(model.Count, posting.Count);
        }
        var copy = new ulong[model.Count];
        Assert.Equal(model.Count, Posting.CopyAll([posting], copy));
        Assert.Equal(model.Order(), copy.Order());
    }

    [Fact]
    public void Candidates_give_the_predicates_hits_and_brute_forces_after_changes_and_deletes()
    {
        var random = new Random(17);
        var catalog = new CaseCatalog();
        using var index = HnswIndex.Create(Dimensions, new HnswOptions());
        var vectors = new Dictionary<ulong, float[]>();
        for (ulong id = 1; id <= 4000; id++)
        {
            catalog.Set(Record(id, random));
            vectors[id] = Vector(random);
            index.Add(id, vectors[id]);
        }
        // A case whose modality changes to MR and back, one that becomes MR, one deleted, one whose labels change.
        catalog.Set(With(Record(10, random), "MR"));
        catalog.Set(With(Record(10, random), "CT"));
        catalog.Set(With(Record(11, random), "MR"));
        catalog.Set(With(Record(12, random), "MR"));
        catalog.Remove(12);
        index.Remove(12);
        vectors.Remove(12);
        var relabelled = With(Record(13, random), "MR");
        relabelled.Labels.Add("d");
        catalog.Set(relabelled);

        Assert.DoesNotContain(12UL, Candidates(catalog, new CaseFilter { Modalities = ["MR"] }));
        Assert.Contains(11UL, Candidates(catalog, new CaseFilter { Modalities = ["MR"] }));
        Assert.DoesNotContain(10UL, Candidates(catalog, new CaseFilter { Modalities = ["mr"] }));
        Assert.Contains(13UL, Candidates(catalog, new CaseFilter { LabelsAny = ["d"] }));

        foreach (var filter in Filters)
        foreach (var (excluded, patient, cases) in new (ulong, string?, IReadOnlySet<ulong>?)[] { (0, null, null), (11, "p3", new HashSet<ulong> { 13, 20, 21 }) })
        {
            var admission = new Admission(catalog, filter, excluded, patient, null, cases);
            var withCandidates = admission.WithCandidates();
            Assert.Equal(filter.Modalities.Count + filter.BodyParts.Count + filter.LabelsAny.Count + filter.LabelsAll.Count > 0,
                withCandidates is ICandidateFilter);
            for (int q = 0; q < 20; q++)
            {
                var query = Vector(random);
                var expected = vectors.Where(v => admission.Accepts(v.Key))
                    .OrderByDescending(v => Dot(v.Value, query)).Take(10).Select(v => v.Key).ToArray();
                var (oldKeys, oldSimilarities) = Search(index, query, admission, exact: true);
                var (keys, similarities) = Search(index, query, withCandidates, exact: true);
                Assert.Equal(oldKeys, keys);
                Assert.Equal(oldSimilarities, similarities);
                Assert.Equal(expected, keys);
                Assert.Equal(expected, Search(index, query, withCandidates, exact: false).Keys);
            }
        }
    }

    [Fact]
    public async Task Searches_with_candidates_never_miss_a_case_that_matches_throughout_while_others_change()
    {
        // Stable MR cases are never written; steady ones are rewritten again and again but keep matching, moving
        // between the filter's two values' lists (MR spelt either way, or CR); churning ones flip between MR and CT
        // and are deleted and put back.
        var random = new Random(23);
        var catalog = new CaseCatalog();
        using var index = HnswIndex.Create(Dimensions, new HnswOptions());
        var vectors = new Dictionary<ulong, float[]>();
        // At most 300 of 4,000 match (7.5 %): few enough that even the planner's choice is exact scoring.
        ulong[] stable = [.. Enumerable.Range(1, 100).Select(i => (ulong)i)];
        ulong[] steady = [.. Enumerable.Range(101, 100).Select(i => (ulong)i)];
        ulong[] churning = [.. Enumerable.Range(201, 100).Select(i => (ulong)i)];
        for (ulong id = 1; id <= 4000; id++)
        {
            catalog.Set(With(Record(id, random), id <= 300 ? "MR" : "US"));
            vectors[id] = Vector(random);
            index.Add(id, vectors[id]);
        }
        var filter = new CaseFilter { Modalities = ["MR", "CR"] };
        var matching = stable.Concat(steady).ToHashSet();

        // Threads of their own, and readers counting searches rather than time: busy writers on a pool of two
        // cores can hold a reader back for seconds.
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 2).Select(w => Task.Factory.StartNew(() =>
        {
            var mine = new Random(w);
            while (!stop.IsCancellationRequested)
            {
                ulong id = steady[mine.Next(steady.Length)];
                catalog.Set(With(Record(id, mine), mine.Next(3) switch { 0 => "MR", 1 => "mr", _ => "CR" }));
                id = churning[mine.Next(churning.Length)];
                if (mine.Next(4) == 0) catalog.Remove(id);
                else catalog.Set(With(Record(id, mine), mine.Next(2) == 0 ? "MR" : "CT"));
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        var readers = Enumerable.Range(0, 2).Select(r => Task.Factory.StartNew(() =>
        {
            var mine = new Random(100 + r);
            for (int searches = 0; searches < 300; searches++)
            {
                var query = Vector(mine);
                var admission = new Admission(catalog, filter, 0, null, null, null);
                var (keys, _) = Search(index, query, admission.WithCandidates(), exact: mine.Next(2) == 0);
                Assert.Equal(keys.Length, keys.Distinct().Count());
                Assert.All(keys, key => Assert.True(matching.Contains(key) || churning.Contains(key), $"key {key} never matched"));
                // The hits not churning must be the best of the always-matching cases, as many as churning ones left room for.
                var others = keys.Where(matching.Contains).ToArray();
                var best = matching.OrderByDescending(id => Dot(vectors[id], query)).Take(others.Length).ToArray();
                Assert.Equal(best, others);
                Assert.Equal(10, keys.Length);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        try
        {
            await Task.WhenAll(readers);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(writers);
        }
    }

    [Fact]
    public async Task The_union_of_a_fields_lists_holds_every_case_moving_between_them()
    {
        var catalog = new CaseCatalog();
        var random = new Random(29);
        ulong[] moving = [.. Enumerable.Range(1, 64).Select(i => (ulong)i)];
        foreach (ulong id in moving) catalog.Set(With(Record(id, random), "MR"));
        var filter = new CaseFilter { Modalities = ["MR", "CR"] };
        using var stop = new CancellationTokenSource();
        var writer = Task.Factory.StartNew(() =>
        {
            var mine = new Random(1);
            for (int i = 0; !stop.IsCancellationRequested; i++)
                catalog.Set(With(Record(moving[i % moving.Length], mine), (i / moving.Length) % 2 == 0 ? "CR" : "MR"));
        }, TaskCreationOptions.LongRunning);
        try
        {
            for (int read = 0; read < 50_000; read++)
            {
                var candidates = Candidates(catalog, filter);
                foreach (ulong id in moving)
                    if (Array.IndexOf(candidates, id) < 0)
                        Assert.Fail($"read {read}: case {id} is in neither list");
            }
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
        }
    }

    private static CaseRecord With(CaseRecord record, string modality)
    {
        record.Metadata["modality"] = modality;
        return record;
    }

    private static ulong[] Candidates(CaseCatalog catalog, CaseFilter filter)
    {
        var candidates = (ICandidateFilter)new Admission(catalog, filter, 0, null, null, null).WithCandidates();
        // Room to spare: writers may add between the count and the copy.
        var keys = new ulong[candidates.CandidateCount + 64];
        int count = candidates.CopyCandidates(keys);
        Assert.InRange(count, 0, keys.Length);
        return keys[..count];
    }

    private static (ulong[] Keys, float[] Similarities) Search(HnswIndex index, float[] query, IKeyFilter filter, bool exact)
    {
        var keys = new ulong[10];
        var similarities = new float[10];
        int found = exact ? index.SearchExact(query, keys, similarities, filter) : index.Search(query, keys, similarities, filter);
        return (keys[..found], similarities[..found]);
    }

    private static float Dot(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);
}
