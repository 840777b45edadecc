using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using MedSearch.Index;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>One sampled slice of a volume: the instance case it is and its (slice-level) embedding.</summary>
public sealed record VolumeSlice(ulong InstanceId, string Key, float[] Embedding);

/// <summary>
/// A series or study as a case: <see cref="Record"/> looks like any stored case (key <c>series:UID</c> or
/// <c>study:UID</c>, the pooled embedding, the union of its instances' labels, the metadata all its instances
/// share) so that search, filters, exclusions and voting treat it alike; <see cref="Slices"/> are the sampled
/// slices the embedding was pooled from, for naming the best-matching slice of a hit.
/// </summary>
public sealed record Volume(VolumeLevel Level, CaseRecord Record, IReadOnlyList<VolumeSlice> Slices, IReadOnlyList<string> Problems);

/// <summary>
/// Series and studies, derived from the stored instance cases like the HNSW index is: grouped by Series and
/// Study Instance UID in whatever order and runs the instances arrived, ordered along the slice normal, sampled
/// and pooled (<see cref="VolumeOptions"/>), each level with its own HNSW index. Nothing here is stored: a series
/// vector is a function of its slices' stored embeddings, and keeping a second copy in the store would let the
/// two disagree after a crash between writes. Writes only mark series dirty; the next volume search re-pools
/// them, so a 500-slice series is pooled once, not 500 times, while it is being indexed.
/// </summary>
internal sealed class VolumeCatalog : IDisposable
{
    public const string SeriesPrefix = "series:";
    public const string StudyPrefix = "study:";

    // Facts that differ from slice to slice and so never describe a whole series.
    private static readonly HashSet<string> PerSlice = new(StringComparer.Ordinal)
    {
        "sop_instance_uid", "instance_number", "image_position", "frames", "transfer_syntax", "format",
    };

    private readonly Func<ulong, CaseRecord?> _read;
    private readonly string _modelId;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, SeriesMembers> _series = new(StringComparer.Ordinal);
    // Series whose pooling failed, with why: reported as their problem instead of breaking every volume search.
    private readonly ConcurrentDictionary<string, string> _unpooled = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _studies = new(StringComparer.Ordinal);
    private readonly Dictionary<ulong, string> _seriesOf = [];
    private readonly HashSet<string> _dirtySeries = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirtyStudies = new(StringComparer.Ordinal);
    private readonly Level _seriesLevel;
    private readonly Level _studyLevel;

    private sealed class SeriesMembers(string study)
    {
        public string Study { get; set; } = study;
        public HashSet<ulong> Instances { get; } = [];
    }

    private sealed class Level(VolumeLevel level, IVectorIndex index) : IDisposable
    {
        public VolumeLevel Kind { get; } = level;
        public IVectorIndex Index { get; } = index;
        public CaseCatalog Catalog { get; } = new();
        public ConcurrentDictionary<ulong, Volume> Volumes { get; } = new();

        public void Put(Volume volume)
        {
            Volumes[volume.Record.Id] = volume;
            Catalog.Set(volume.Record);
            Index.Add(volume.Record.Id, volume.Record.Embedding.ToArray());
        }

        public void Remove(ulong id)
        {
            Volumes.TryRemove(id, out _);
            Catalog.Remove(id);
            Index.Remove(id);
        }

        public void Dispose() => Index.Dispose();
    }

    public VolumeCatalog(VolumeOptions options, int sliceDimensions, HnswOptions hnsw, string modelId, Func<ulong, CaseRecord?> read)
    {
        Options = options;
        _modelId = modelId;
        _read = read;
        Dimensions = options.DimensionsFor(sliceDimensions);
        // Pooled vectors of similar volumes lie very close together: I8 quantisation error swamps their differences.
        var volumeHnsw = hnsw with { Quantization = Quantization.F32 };
        _seriesLevel = new Level(VolumeLevel.Series, HnswIndex.Create(Dimensions, volumeHnsw));
        _studyLevel = new Level(VolumeLevel.Study, HnswIndex.Create(Dimensions, volumeHnsw));
    }

    public VolumeOptions Options { get; }

    /// <summary>Length of series and study vectors.</summary>
    public int Dimensions { get; }

    public static string SeriesKey(string seriesUid) => SeriesPrefix + seriesUid;
    public static string StudyKey(string studyUid) => StudyPrefix + studyUid;

    /// <summary>An instance was stored or re-annotated: its series and study need pooling again.</summary>
    public void Observe(CaseRecord instance)
    {
        if (!instance.Metadata.TryGetValue("series_instance_uid", out var series) || string.IsNullOrWhiteSpace(series)) return;
        var study = instance.Metadata.GetValueOrDefault("study_instance_uid") is { Length: > 0 } s ? s : "series-" + series;
        lock (_lock)
        {
            Detach(instance.Id);
            if (!_series.TryGetValue(series, out var members)) _series[series] = members = new SeriesMembers(study);
            else if (members.Study != study)
            {
                // The latest instance's study wins: a corrected Study UID moves the whole series.
                LeaveStudy(series, members.Study);
                members.Study = study;
            }
            members.Instances.Add(instance.Id);
            _seriesOf[instance.Id] = series;
            if (!_studies.TryGetValue(study, out var inStudy)) _studies[study] = inStudy = new(StringComparer.Ordinal);
            inStudy.Add(series);
            _dirtySeries.Add(series);
            _dirtyStudies.Add(study);
        }
    }

    /// <summary>An instance was deleted.</summary>
    public void Forget(ulong instanceId)
    {
        lock (_lock) Detach(instanceId);
    }

    private void Detach(ulong instanceId)
    {
        if (!_seriesOf.Remove(instanceId, out var series)) return;
        var members = _series[series];
        members.Instances.Remove(instanceId);
        _dirtySeries.Add(series);
        _dirtyStudies.Add(members.Study);
    }

    private void LeaveStudy(string series, string study)
    {
        if (_studies.TryGetValue(study, out var inStudy)) inStudy.Remove(series);
        _dirtyStudies.Add(study);
    }

    public int Count(VolumeLevel level)
    {
        Refresh();
        return LevelOf(level).Volumes.Count;
    }

    /// <summary>Every series or study, pooled from the instances stored now.</summary>
    public IEnumerable<Volume> All(VolumeLevel level)
    {
        Refresh();
        return LevelOf(level).Volumes.Values;
    }

    public bool TryGet(VolumeLevel level, ulong id, out Volume volume)
    {
        Refresh();
        return LevelOf(level).Volumes.TryGetValue(id, out volume!);
    }

    /// <summary>The index and catalog of a level, current as of this call.</summary>
    public (IVectorIndex Index, CaseCatalog Catalog) Searchable(VolumeLevel level)
    {
        Refresh();
        var l = LevelOf(level);
        return (l.Index, l.Catalog);
    }

    private Level LevelOf(VolumeLevel level) => level switch
    {
        VolumeLevel.Series => _seriesLevel,
        VolumeLevel.Study => _studyLevel,
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "instances are not volumes"),
    };

    /// <summary>Re-pools every series and study touched since the last refresh.</summary>
    private void Refresh()
    {
        lock (_lock)
        {
            if (_dirtySeries.Count == 0 && _dirtyStudies.Count == 0) return;
            foreach (var series in _dirtySeries)
            {
                var id = CaseId.FromKey(SeriesKey(series));
                _series.TryGetValue(series, out var members);
                Volume? volume = null;
                _unpooled.TryRemove(series, out _);
                try
                {
                    if (members is not null) volume = PoolSeries(series, members.Instances);
                }
                catch (Exception e) when (e is ArgumentException or CollectionException or Storage.StoreException)
                {
                    _unpooled[series] = $"not searchable as a series: {e.Message}";
                }
                if (volume is not null)
                {
                    _seriesLevel.Put(volume);
                    continue;
                }
                _seriesLevel.Remove(id);
                if (members is { Instances.Count: 0 })
                {
                    _series.Remove(series);
                    LeaveStudy(series, members.Study);
                }
            }
            _dirtySeries.Clear();
            foreach (var study in _dirtyStudies)
            {
                var id = CaseId.FromKey(StudyKey(study));
                var volume = _studies.TryGetValue(study, out var series) ? PoolStudy(study, series) : null;
                if (volume is null)
                {
                    _studyLevel.Remove(id);
                    if (series is { Count: 0 }) _studies.Remove(study);
                }
                else _studyLevel.Put(volume);
            }
            _dirtyStudies.Clear();
        }
    }

    /// <summary>
    /// The series as a volume: its instances ordered, odd ones left out with a reason (another image size than
    /// most slices, a position already taken), the rest sampled and pooled. Null when no usable slice is left.
    /// </summary>
    private Volume? PoolSeries(string series, IEnumerable<ulong> instanceIds)
    {
        var slices = new List<(CaseRecord Record, SlicePlace Place)>();
        foreach (var id in instanceIds)
            if (_read(id) is { } instance && instance.ModelId == _modelId && instance.Embedding.Count > 0)
                slices.Add((instance, SlicePlace.Of(instance)));
        if (slices.Count == 0) return null;
        var problems = new List<string>();
        var ordered = Arrange(slices, s => s.Place, s => (s.Record.Width, s.Record.Height), s => s.Record.Source, problems);

        var sampled = VolumePooling.Sample(ordered.Count, Options.SlicesPerSeries).Select(i => ordered[i].Record).ToList();
        var embedding = VolumePooling.Pool(sampled.Select(r => r.Embedding.ToArray()).ToList(), Options.Pooling);
        var key = SeriesKey(series);
        var record = PooledRecord(key, $"series {series} ({ordered.Count} slices)", sampled[sampled.Count / 2], embedding,
            ordered.Select(s => s.Record.PixelSha256));
        Describe(record, ordered.Select(s => s.Record).ToList(), VolumeLevel.Series, ordered.Count, sampled.Count);
        return new Volume(VolumeLevel.Series, record, sampled.Select(r => new VolumeSlice(r.Id, r.Key, r.Embedding.ToArray())).ToList(), problems);
    }

    /// <summary>
    /// The slices of one series in volume order, without those that do not belong in it: another image size than
    /// most (a localizer, a reformat), or a position another slice already holds (a repeat). Positions are used
    /// only when every slice has one, since a partial set would interleave two orders. Shared by stored series
    /// and series queries, so that both are pooled alike.
    /// </summary>
    internal static List<T> Arrange<T>(IReadOnlyList<T> slices, Func<T, SlicePlace> placeOf, Func<T, (int Width, int Height)> sizeOf,
        Func<T, string> nameOf, List<string> problems)
    {
        var placed = slices.Select(s => (Slice: s, Place: placeOf(s))).ToList();
        if (placed.Any(s => double.IsNaN(s.Place.Position)))
        {
            if (placed.Count > 1)
                problems.Add($"{placed.Count(s => double.IsNaN(s.Place.Position))} of {placed.Count} slices lack a usable Image Position/Orientation (Patient): ordered by Instance Number");
            placed = placed.Select(s => (s.Slice, s.Place.WithoutPosition())).ToList();
        }
        var size = placed.GroupBy(s => sizeOf(s.Slice)).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        foreach (var odd in placed.Where(s => sizeOf(s.Slice) != size))
            problems.Add($"{nameOf(odd.Slice)}: {sizeOf(odd.Slice).Width}x{sizeOf(odd.Slice).Height}, the series is {size.Width}x{size.Height}; left out of the series");
        var ordered = new List<(T Slice, SlicePlace Place)>(placed.Count);
        foreach (var slice in placed.Where(s => sizeOf(s.Slice) == size).OrderBy(s => s.Place))
        {
            if (ordered.Count > 0 && !double.IsNaN(slice.Place.Position) && Math.Abs(ordered[^1].Place.Position - slice.Place.Position) < 1e-4
                && ordered[^1].Place.Frame == slice.Place.Frame)
            {
                problems.Add($"{nameOf(slice.Slice)}: same position as {nameOf(ordered[^1].Slice)}; left out of the series");
                continue;
            }
            ordered.Add(slice);
        }
        return ordered.Select(s => s.Slice).ToList();
    }

    /// <summary>What was left out of a series and why, or why it could not be pooled at all.</summary>
    public IReadOnlyList<string> ProblemsOf(string seriesUid)
    {
        Refresh();
        if (_unpooled.TryGetValue(seriesUid, out var reason)) return [reason];
        return _seriesLevel.Volumes.TryGetValue(CaseId.FromKey(SeriesKey(seriesUid)), out var volume) ? volume.Problems : [];
    }

    /// <summary>
    /// The study as one vector: the mean of its series vectors, normalised. Chosen over matching series to
    /// series because a study then stays one point of one index — one search, exact filters — while
    /// best-series-to-best-series matching is what a series-level search with one hit per study already gives.
    /// </summary>
    private Volume? PoolStudy(string study, IEnumerable<string> seriesUids)
    {
        var members = seriesUids.Order(StringComparer.Ordinal)
            .Select(s => _seriesLevel.Volumes.TryGetValue(CaseId.FromKey(SeriesKey(s)), out var v) ? v : null)
            .OfType<Volume>().ToList();
        if (members.Count == 0) return null;
        var embedding = VolumePooling.Pool(members.Select(m => m.Record.Embedding.ToArray()).ToList(), Pooling.Mean);
        var key = StudyKey(study);
        var record = PooledRecord(key, $"study {study} ({members.Count} series)", members[0].Record, embedding, members.Select(m => m.Record.PixelSha256));
        int slices = members.Sum(m => int.Parse(m.Record.Metadata["slices"], CultureInfo.InvariantCulture));
        Describe(record, members.Select(m => m.Record).ToList(), VolumeLevel.Study, slices, members.Sum(m => m.Slices.Count));
        record.Metadata["series"] = members.Count.ToString(CultureInfo.InvariantCulture);
        return new Volume(VolumeLevel.Study, record, members.SelectMany(m => m.Slices).ToList(), members.SelectMany(m => m.Problems).ToList());
    }

    /// <summary>Labels of any part, metadata every part shares, and what the volume is made of.</summary>
    private void Describe(CaseRecord volume, IReadOnlyList<CaseRecord> parts, VolumeLevel level, int slices, int sampled)
    {
        volume.Labels.Add(parts.SelectMany(p => p.Labels).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
        foreach (var (name, value) in parts[0].Metadata)
            if (!PerSlice.Contains(name) && parts.All(p => p.Metadata.TryGetValue(name, out var v) && v == value))
                volume.Metadata[name] = value;
        var c = CultureInfo.InvariantCulture;
        volume.Metadata["level"] = level.ToString().ToLowerInvariant();
        volume.Metadata["slices"] = slices.ToString(c);
        volume.Metadata["sampled_slices"] = sampled.ToString(c);
        volume.Metadata["pooling"] = Options.Pooling.ToString().ToLowerInvariant();
    }

    /// <summary>A volume is an exact duplicate of another when its ordered slices' pixel hashes are; empty if any slice has none.</summary>
    /// <summary>A series or study as a case: its pooled embedding, and the size and thumbnail of the slice that shows it.</summary>
    private CaseRecord PooledRecord(string key, string source, CaseRecord face, float[] embedding, IEnumerable<Google.Protobuf.ByteString> pixelHashes)
    {
        var record = new CaseRecord
        {
            Id = CaseId.FromKey(key),
            Key = key,
            Source = source,
            ModelId = _modelId,
            Width = face.Width,
            Height = face.Height,
            Thumbnail = face.Thumbnail,
            PixelSha256 = CombinedHash(pixelHashes),
        };
        record.Embedding.Add(embedding);
        return record;
    }

    private static Google.Protobuf.ByteString CombinedHash(IEnumerable<Google.Protobuf.ByteString> parts)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var part in parts)
        {
            if (part.IsEmpty) return Google.Protobuf.ByteString.Empty;
            hash.AppendData(part.Span);
        }
        return Google.Protobuf.ByteString.CopyFrom(hash.GetHashAndReset());
    }

    public void Dispose()
    {
        _seriesLevel.Dispose();
        _studyLevel.Dispose();
    }
}
