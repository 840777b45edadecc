using System.Globalization;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Storage.Records;

namespace MedSearch.Evaluation;

/// <summary>Where an evaluation's labelled queries come from.</summary>
public abstract record QuerySet
{
    private QuerySet() { }

    /// <summary>The collection's cases whose metadata <paramref name="Key"/> is <paramref name="Value"/> (e.g. split=test); the rest are the reference.</summary>
    public sealed record Split(string Key, string Value) : QuerySet;

    /// <summary>Images outside the collection with their labels.csv; the whole collection is the reference.</summary>
    public sealed record Folder(string Path, string LabelsPath) : QuerySet;

    /// <summary>Every case of the collection in turn, never seeing itself or its own study.</summary>
    public sealed record LeaveOneOut : QuerySet;
}

/// <summary>A wanted sensitivity or specificity, for which each label's threshold is chosen on the evaluation set.</summary>
public sealed record OperatingTarget(OperatingMeasure Measure, double Value)
{
    public string Name => $"{Measure.ToString().ToLowerInvariant()} {Value.ToString("0.###", CultureInfo.InvariantCulture)}";
}

public enum OperatingMeasure { Sensitivity, Specificity }

public sealed record EvaluationOptions
{
    public required QuerySet Queries { get; init; }
    /// <summary>Neighbourhood sizes; the searches run once at the largest and the smaller ones are its prefixes.</summary>
    public IReadOnlyList<int> Ks { get; init; } = [10];
    public Weighting Weighting { get; init; } = Weighting.Similarity;
    public double Temperature { get; init; } = 0.1;
    /// <summary>A query never sees cases of its own patient (where the query has one).</summary>
    public bool ExcludeSamePatient { get; init; }
    public OperatingTarget? Target { get; init; }
    public IReadOnlyList<AgeBand> AgeBands { get; init; } = Subgroups.DefaultAgeBands;
    public int BootstrapSamples { get; init; } = 1000;
    public int Seed { get; init; } = 20261127;
    /// <summary>Leave out queries whose pixels equal a reference case's.</summary>
    public bool DropDuplicates { get; init; }
    /// <summary>Evaluate images, series or studies: queries and reference are cases of that level.</summary>
    public VolumeLevel Level { get; init; } = VolumeLevel.Instance;
}

/// <summary>One query's score for one label at one k, by approximate and by exact search.</summary>
public sealed record QueryScore(string Query, int K, string Label, bool Truth, double Score, double ExactScore);

/// <summary>An evaluation's report and the per-query scores behind it.</summary>
public sealed record EvaluationResult(EvaluationReport Report, IReadOnlyList<QueryScore> Scores)
{
    public const string ScoresFile = "scores.csv";

    /// <summary>The per-query scores as CSV (query, k, label, truth 0/1, score, exact_score), for checking the report elsewhere.</summary>
    public void WriteScores(string path)
    {
        var csv = new System.Text.StringBuilder("query,k,label,truth,score,exact_score\n");
        var c = CultureInfo.InvariantCulture;
        foreach (var s in Scores)
            csv.Append(Csv.Field(s.Query)).Append(',').Append(s.K.ToString(c)).Append(',').Append(Csv.Field(s.Label)).Append(',')
                .Append(s.Truth ? '1' : '0').Append(',').Append(s.Score.ToString("R", c)).Append(',').Append(s.ExactScore.ToString("R", c)).Append('\n');
        Embedding.AtomicFile.Write(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(csv.ToString())));
    }

    /// <summary>
    /// The operating points the report chose for its target at <paramref name="k"/>, to store with the collection
    /// so that Classify decides with them; labels whose threshold could not be chosen (no positive or no negative
    /// query) are left out.
    /// </summary>
    public IReadOnlyDictionary<string, OperatingPoints.Point> ChosenPoints(int k)
    {
        var byK = Report.ByK.SingleOrDefault(r => r.K == k) ?? throw new ArgumentException($"the report has no k={k}", nameof(k));
        return byK.Labels
            .Where(l => l.OperatingPoint.Source == Evaluator.TargetSource)
            .ToDictionary(l => l.Label, l => new OperatingPoints.Point(l.OperatingPoint.Threshold, $"{l.OperatingPoint.Name} @k={k}", k,
                Report.Settings.Weighting, l.Overall.AtOperatingPoint.Sensitivity, l.Overall.AtOperatingPoint.Specificity,
                $"{Report.Settings.Mode}: {Report.Settings.QuerySource}, {Report.Created:yyyy-MM-dd}"));
    }
}

/// <summary>
/// `medsearch eval`: runs every labelled query through the collection's own search and neighbour vote — the
/// approximate (HNSW) search the service answers with, and an exact search beside it — and measures, per label,
/// how well the vote separates cases that carry the label from those that do not, overall and per sex and age band.
/// </summary>
public static class Evaluator
{
    internal const string TargetSource = "target";

    private sealed record QueryCase(string Key, Query Query, IReadOnlySet<string> Labels, IReadOnlyDictionary<string, string> Metadata, string? PixelSha256);

    private sealed record Reference(Dictionary<string, long> LabelCounts, Dictionary<string, List<(string Key, string[] Labels)>> ByPixels, long Count, int Unhashed);

    /// <exception cref="ArgumentException">Options that cannot be evaluated (bad k, no queries); the message names which.</exception>
    public static EvaluationResult Run(Collection collection, EvaluationOptions options, IProgress<IndexProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        if (options.Ks.Count == 0 || options.Ks.Any(k => k < 1 || k > collection.MaxNeighbours))
            throw new ArgumentException($"k: each must be between 1 and {collection.MaxNeighbours}, got {string.Join(",", options.Ks)}");
        var ks = options.Ks.Distinct().Order().ToArray();
        int maxK = ks[^1];
        var subgroups = new Subgroups(options.AgeBands);

        var failed = new List<string>();
        if (options.Level != VolumeLevel.Instance && options.Queries is QuerySet.Folder)
            throw new ArgumentException("queries: a folder of images is evaluated at instance level; at series or study level use --split or --leave-one-out");
        var (queries, reference) = Gather(collection, options.Queries, options.Level, failed, cancellation);
        // Every case of the split stays out of the reference, also those dropped or unlabelled below.
        var splitIds = options.Queries is QuerySet.Split ? queries.Select(q => q.Query.CaseId).ToHashSet() : null;
        var (duplicates, duplicated) = FindDuplicates(queries, reference, options.Queries is QuerySet.LeaveOneOut, options.DropDuplicates);
        if (options.DropDuplicates) queries = queries.Where(q => !duplicated.Contains(q.Key)).ToList();
        // Leave-one-out queries are the reference cases themselves: counted once.
        int unhashed = reference.Unhashed + (options.Queries is QuerySet.LeaveOneOut ? 0 : queries.Count(q => q.PixelSha256 is null));
        int unlabelled = queries.Count(q => q.Labels.Count == 0);
        queries = queries.Where(q => q.Labels.Count > 0).ToList();
        if (queries.Count == 0)
            throw new ArgumentException($"no labelled query to evaluate ({unlabelled} unlabelled, {failed.Count} unreadable)");

        var ann = new List<Neighbour>[queries.Count];
        var exact = new List<Neighbour>[queries.Count];
        int done = 0;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Parallel.For(0, queries.Count, new ParallelOptions { CancellationToken = cancellation }, i =>
        {
            var q = queries[i];
            var search = new SearchOptions
            {
                K = maxK,
                ExcludeQueryCase = options.Queries is QuerySet.LeaveOneOut,
                ExcludeSameStudy = options.Queries is QuerySet.LeaveOneOut && q.Query.StudyInstanceUid is not null,
                ExcludeSamePatient = options.ExcludeSamePatient && q.Query.PatientHash is not null,
                ExcludedCases = splitIds,
            };
            ann[i] = [.. collection.Search(q.Query, search).Neighbours];
            exact[i] = [.. collection.Search(q.Query, search with { Exact = true }).Neighbours];
            int finished = Interlocked.Increment(ref done);
            double rate = finished / Math.Max(watch.Elapsed.TotalSeconds, 1e-3);
            progress?.Report(new IndexProgress(finished, queries.Count, rate, TimeSpan.FromSeconds((queries.Count - finished) / rate)));
        });

        var labels = queries.SelectMany(q => q.Labels).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var groups = GroupsOf(queries, subgroups);
        var scores = new List<QueryScore>();
        var byK = new List<KReport>();
        foreach (var k in ks)
        {
            var annScores = Vote(ann, k, options);
            var exactScores = Vote(exact, k, options);
            for (int i = 0; i < queries.Count; i++)
                foreach (var label in labels)
                    scores.Add(new QueryScore(queries[i].Key, k, label, queries[i].Labels.Contains(label),
                        annScores[i].GetValueOrDefault(label), exactScores[i].GetValueOrDefault(label)));
            var labelReports = labels.Select(label => ReportLabel(collection, options, queries, reference, groups, ann, k, label,
                annScores, exactScores)).ToList();
            byK.Add(new KReport(k, Recall(ann, exact, k), labelReports));
        }

        var settings = new EvaluationSettings(collection.DataPath, collection.ModelId, ModeOf(options.Queries), SourceOf(options.Queries, options.Level, collection.Volumes), ks,
            options.Weighting.ToString().ToLowerInvariant(), options.Weighting == Weighting.Softmax ? options.Temperature : null,
            ExclusionsOf(options), options.Target?.Name, [.. subgroups.AgeBands.Select(b => b.Name)], options.BootstrapSamples, options.Seed,
            HnswOf(collection.Stats().Index));
        var perLabel = labels.ToDictionary(l => l, l => queries.Count(q => q.Labels.Contains(l)), StringComparer.Ordinal);
        var dataset = new DatasetSummary(reference.Count, queries.Count, unlabelled, failed, perLabel);
        var report = new EvaluationReport(DateTimeOffset.UtcNow, settings, dataset, duplicates with { Unchecked = unhashed }, byK);
        return new EvaluationResult(report, scores);
    }

    /// <summary>The queries, and what the reference holds: label counts (for average precision) and pixel hashes (for duplicates).</summary>
    private static (List<QueryCase>, Reference) Gather(Collection collection, QuerySet set, VolumeLevel level, List<string> failed, CancellationToken cancellation)
    {
        var queries = new List<QueryCase>();
        var labelCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        var byPixels = new Dictionary<string, List<(string, string[])>>(StringComparer.Ordinal);
        long count = 0;
        int unhashed = 0;
        foreach (var record in collection.Cases(level))
        {
            cancellation.ThrowIfCancellationRequested();
            bool isQuery = set switch
            {
                QuerySet.Split split => record.Metadata.TryGetValue(split.Key, out var value) && value == split.Value,
                QuerySet.LeaveOneOut => true,
                _ => false,
            };
            if (isQuery) queries.Add(QueryOf(collection, record, level));
            if (isQuery && set is QuerySet.Split) continue;
            count++;
            foreach (var label in record.Labels.Distinct(StringComparer.Ordinal)) labelCounts[label] = labelCounts.GetValueOrDefault(label) + 1;
            if (record.PixelSha256.IsEmpty) unhashed++;
            else
            {
                var hash = Convert.ToHexString(record.PixelSha256.Span);
                if (!byPixels.TryGetValue(hash, out var copies)) byPixels[hash] = copies = [];
                copies.Add((record.Key, [.. record.Labels]));
            }
        }
        if (set is QuerySet.Split s && queries.Count == 0)
            throw new ArgumentException($"no case of the collection has metadata {s.Key}={s.Value}");
        if (set is QuerySet.Folder folder) queries = ReadFolder(collection, folder, failed, cancellation);
        return (queries, new Reference(labelCounts, byPixels, count, unhashed));
    }

    private static QueryCase QueryOf(Collection collection, CaseRecord record, VolumeLevel level)
    {
        if (record.ModelId != collection.ModelId)
            throw new ArgumentException($"case {record.Key} was embedded by {record.ModelId}, not the collection's {collection.ModelId}: reindex first");
        var metadata = new Dictionary<string, string>(record.Metadata, StringComparer.Ordinal);
        var query = new Query([.. record.Embedding], metadata.GetValueOrDefault("patient_hash"), metadata.GetValueOrDefault("study_instance_uid"), record.Id, level);
        return new QueryCase(record.Key, query, record.Labels.ToHashSet(StringComparer.Ordinal), metadata,
            record.PixelSha256.IsEmpty ? null : Convert.ToHexString(record.PixelSha256.Span));
    }

    /// <summary>Reads and embeds a folder of query images exactly as indexing would, with their labels.csv rows.</summary>
    private static List<QueryCase> ReadFolder(Collection collection, QuerySet.Folder folder, List<string> failed, CancellationToken cancellation)
    {
        if (!Directory.Exists(folder.Path)) throw new ArgumentException($"queries: {folder.Path} is not a folder");
        var labels = LabelsFile.Load(folder.LabelsPath);
        var labelsPath = Path.GetFullPath(folder.LabelsPath);
        var root = Path.GetFullPath(folder.Path);
        var files = Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.Hidden })
            .Where(f => f != labelsPath).Order(StringComparer.Ordinal).ToArray();
        var queries = new QueryCase?[files.Length];
        var errors = new string?[files.Length];
        Parallel.For(0, files.Length, new ParallelOptions { CancellationToken = cancellation }, i =>
        {
            try
            {
                var bytes = File.ReadAllBytes(files[i]);
                var key = CaseWriter.KeyOf(bytes, files[i], CaseId.FileKey(Path.GetRelativePath(root, files[i])));
                var input = ImageReader.Read(bytes, files[i], collection.ReadOptions);
                var image = input.Frames[0].Image;
                var metadata = new Dictionary<string, string>(CaseFacts.From(input), StringComparer.Ordinal);
                var annotation = labels.For(key, metadata.GetValueOrDefault("study_instance_uid"));
                foreach (var (name, value) in annotation?.Metadata ?? new Dictionary<string, string>()) metadata[name] = value;
                var query = new Query(collection.Embed(image), input.Dicom?.PatientHash, input.Dicom?.StudyInstanceUid);
                queries[i] = new QueryCase(key, query, (annotation?.Labels ?? []).ToHashSet(StringComparer.Ordinal), metadata,
                    Convert.ToHexString(image.PixelSha256()));
            }
            catch (Exception e) when (CaseWriter.FailureOf(e) is { } failure)
            {
                if (failure.Outcome == ItemOutcome.Failed) errors[i] = $"{files[i]}: {failure.Reason}";
            }
            catch (ArgumentException e)
            {
                errors[i] = $"{files[i]}: {CaseWriter.NotEmbeddable(e)}";
            }
        });
        failed.AddRange(errors.OfType<string>());
        return [.. queries.OfType<QueryCase>()];
    }

    /// <summary>The duplicate report (counts, and a bounded list with conflicting pairs first) and the queries that have a duplicate.</summary>
    private static (DuplicateReport, HashSet<string>) FindDuplicates(List<QueryCase> queries, Reference reference, bool leaveOneOut, bool dropped)
    {
        var conflicting = new List<DuplicatePair>();
        var agreeing = new List<DuplicatePair>();
        var duplicated = new HashSet<string>(StringComparer.Ordinal);
        long total = 0, conflicts = 0;
        foreach (var q in queries)
            if (q.PixelSha256 is { } hash && reference.ByPixels.TryGetValue(hash, out var copies))
                foreach (var (key, labels) in copies)
                {
                    if (leaveOneOut && key == q.Key) continue;
                    total++;
                    duplicated.Add(q.Key);
                    bool same = q.Labels.SetEquals(labels);
                    if (!same) conflicts++;
                    var list = same ? agreeing : conflicting;
                    if (list.Count < DuplicateReport.MaxListed) list.Add(new DuplicatePair(q.Key, key, same));
                }
        var listed = conflicting.Concat(agreeing).Take(DuplicateReport.MaxListed).ToList();
        return (new DuplicateReport(listed, total, conflicts, duplicated.Count, dropped, 0), duplicated);
    }

    private static Dictionary<string, double>[] Vote(List<Neighbour>[] neighbours, int k, EvaluationOptions options) =>
        neighbours.Select(n => NeighbourVote.Classify(n.Count > k ? n.GetRange(0, k) : n, options.Weighting, options.Temperature, OperatingPoints.None)
            .ToDictionary(d => d.Label, d => d.Score, StringComparer.Ordinal)).ToArray();

    /// <summary>Share of the exact k nearest that the approximate search found too, over all queries.</summary>
    private static double Recall(List<Neighbour>[] ann, List<Neighbour>[] exact, int k)
    {
        long found = 0, wanted = 0;
        for (int i = 0; i < ann.Length; i++)
        {
            var truth = exact[i].Take(k).Select(n => n.Case.Id).ToHashSet();
            wanted += truth.Count;
            found += ann[i].Take(k).Count(n => truth.Contains(n.Case.Id));
        }
        return wanted == 0 ? 1 : (double)found / wanted;
    }

    /// <summary>Query indices per subgroup: sex groups, then age bands in band order, unknowns last in each.</summary>
    private static List<(string Dimension, string Group, int[] Members)> GroupsOf(List<QueryCase> queries, Subgroups subgroups)
    {
        var groups = new List<(string, string, int[])>();
        void Add(string dimension, Func<QueryCase, string> groupOf, IEnumerable<string> order)
        {
            var members = Enumerable.Range(0, queries.Count).GroupBy(i => groupOf(queries[i])).ToDictionary(g => g.Key, g => g.ToArray());
            foreach (var name in order.Concat(members.Keys.Order(StringComparer.Ordinal)).Distinct())
                if (members.TryGetValue(name, out var indices)) groups.Add((dimension, name, indices));
        }
        Add(Subgroups.SexDimension, q => Subgroups.SexOf(q.Metadata), ["sex F", "sex M", "sex O"]);
        Add(Subgroups.AgeDimension, q => subgroups.AgeOf(q.Metadata), subgroups.AgeBands.Select(b => b.Name));
        return groups;
    }

    private static LabelReport ReportLabel(Collection collection, EvaluationOptions options, List<QueryCase> queries, Reference reference,
        List<(string Dimension, string Group, int[] Members)> groups, List<Neighbour>[] ann, int k, string label,
        Dictionary<string, double>[] annScores, Dictionary<string, double>[] exactScores)
    {
        var cases = queries.Select((q, i) => new ScoredQuery(annScores[i].GetValueOrDefault(label), q.Labels.Contains(label))).ToArray();
        var point = ChoosePoint(collection, options.Target, cases, label);
        long inReference = reference.LabelCounts.GetValueOrDefault(label);

        GroupMetrics Measure(string name, IReadOnlyList<int> members)
        {
            var subset = members.Select(i => cases[i]).ToArray();
            var positives = members.Where(i => cases[i].Positive).ToArray();
            var relevant = positives.Select(i => ann[i].Take(k).Select(n => n.Case.Labels.Contains(label)).ToArray()).ToArray();
            // Leave-one-out: the query itself is in the reference counts but never among its own neighbours.
            long possible = options.Queries is QuerySet.LeaveOneOut ? inReference - 1 : inReference;
            return new GroupMetrics(name, positives.Length, subset.Length - positives.Length, Metrics.Auc(subset),
                Metrics.AucInterval(subset, options.BootstrapSamples, options.Seed), Metrics.At(subset, point.Threshold),
                Mean(relevant.Select(r => Metrics.PrecisionAtK(r))), Mean(relevant.Select(r => Metrics.AveragePrecision(r, k, possible))));
        }

        var overall = Measure("all", Enumerable.Range(0, queries.Count).ToArray());
        var exactCases = queries.Select((q, i) => new ScoredQuery(exactScores[i].GetValueOrDefault(label), q.Labels.Contains(label))).ToArray();
        var subgroupMetrics = groups.Select(g => (g.Dimension, Metrics: Measure(g.Group, g.Members))).ToList();
        return new LabelReport(label, point, overall, Metrics.Auc(exactCases), Metrics.Roc(cases),
            [.. subgroupMetrics.Select(g => g.Metrics)], Gaps(subgroupMetrics));
    }

    private static OperatingPointChoice ChoosePoint(Collection collection, OperatingTarget? target, ScoredQuery[] cases, string label)
    {
        if (target is not null)
        {
            var threshold = target.Measure == OperatingMeasure.Sensitivity
                ? Metrics.ThresholdForSensitivity(cases, target.Value)
                : Metrics.ThresholdForSpecificity(cases, target.Value);
            // Above 1 means only calling nothing positive reaches the target, which no threshold on a vote share
            // (at most 1, positive at or above) can store; null means the label lacks positives or negatives.
            if (threshold is { } t and <= 1) return new OperatingPointChoice(target.Name, TargetSource, t);
        }
        var fallback = collection.OperatingPoints.Labels.TryGetValue(label, out var point)
            ? new OperatingPointChoice(point.Name, "stored", point.Threshold)
            : new OperatingPointChoice(OperatingPoints.DefaultName, "default", OperatingPoints.DefaultThreshold);
        return target is null ? fallback : fallback with { Name = $"{fallback.Name} ({target.Name} not reachable on these queries)" };
    }

    /// <summary>Per dimension and metric, the best and worst subgroup with a known value (unknowns left out): the gap a fairness review looks at.</summary>
    private static List<SubgroupGap> Gaps(List<(string Dimension, GroupMetrics Metrics)> groups)
    {
        var gaps = new List<SubgroupGap>();
        foreach (var dimension in groups.GroupBy(g => g.Dimension))
        {
            var known = dimension.Where(g => !g.Metrics.Group.EndsWith(Subgroups.Unknown, StringComparison.Ordinal)).Select(g => g.Metrics).ToList();
            foreach (var (metric, value) in new (string, Func<GroupMetrics, double?>)[]
                     {
                         ("AUC", m => m.Auc), ("sensitivity", m => m.AtOperatingPoint.Sensitivity), ("specificity", m => m.AtOperatingPoint.Specificity),
                     })
            {
                var measured = known.Where(m => value(m) is not null).OrderByDescending(m => value(m)).ToList();
                if (measured.Count < 2) continue;
                gaps.Add(new SubgroupGap(dimension.Key, metric, measured[0].Group, measured[^1].Group, value(measured[0])!.Value - value(measured[^1])!.Value));
            }
        }
        return gaps;
    }

    private static double? Mean(IEnumerable<double?> values)
    {
        var known = values.OfType<double>().ToArray();
        return known.Length == 0 ? null : known.Average();
    }

    private static string HnswOf(Index.HnswOptions hnsw) =>
        $"HNSW connectivity {hnsw.Connectivity}, expansion add {hnsw.ExpansionAdd} / search {hnsw.ExpansionSearch}, {hnsw.Quantization} vectors";

    private static string ModeOf(QuerySet set) => set switch
    {
        QuerySet.Split => "split",
        QuerySet.Folder => "folder",
        _ => "leave-one-out",
    };

    private static string SourceOf(QuerySet set, VolumeLevel level, VolumeOptions volumes)
    {
        var cases = level switch
        {
            VolumeLevel.Series => $"series (pooled: {volumes})",
            VolumeLevel.Study => $"studies (mean of series pooled: {volumes})",
            _ => "cases",
        };
        return set switch
        {
            QuerySet.Split s => $"{cases} with {s.Key}={s.Value}",
            QuerySet.Folder f => $"{f.Path} (labels {f.LabelsPath})",
            _ => $"every one of the collection's {cases}",
        };
    }

    private static List<string> ExclusionsOf(EvaluationOptions options)
    {
        var exclusions = new List<string>();
        if (options.Queries is QuerySet.LeaveOneOut) exclusions.AddRange(["itself", "its own study (where it has one)"]);
        if (options.Queries is QuerySet.Split) exclusions.Add("every other query");
        if (options.ExcludeSamePatient) exclusions.Add("its own patient (where it has one)");
        if (options.DropDuplicates) exclusions.Add("queries with an exact-duplicate image in the reference (dropped)");
        return exclusions;
    }
}
