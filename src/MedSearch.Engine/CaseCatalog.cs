using System.Collections.Concurrent;
using System.Globalization;
using MedSearch.Storage.Records;

namespace MedSearch.Engine;

/// <summary>
/// The facts of one case that filters, exclusions, grouping and statistics look at, taken from its record's
/// metadata (<see cref="CaseFacts"/> keys) and labels. Immutable: a changed case gets a new entry.
/// </summary>
public sealed class CatalogEntry
{
    public required string Key { get; init; }
    public string? Modality { get; init; }
    public string? BodyPart { get; init; }
    public string? ViewPosition { get; init; }
    public string? Laterality { get; init; }
    public string? Sex { get; init; }
    /// <summary>Years; NaN when unknown.</summary>
    public double Age { get; init; } = double.NaN;
    public DateOnly? StudyDate { get; init; }
    public string? StudyInstanceUid { get; init; }
    public string? SeriesInstanceUid { get; init; }
    public string? PatientHash { get; init; }
    public required string[] Labels { get; init; }

    public static CatalogEntry From(CaseRecord record, Func<string, string>? intern = null)
    {
        intern ??= static s => s;
        string? Fact(string key) => record.Metadata.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? intern(v.Trim()) : null;
        var c = CultureInfo.InvariantCulture;
        return new CatalogEntry
        {
            Key = record.Key,
            Modality = Fact("modality"),
            BodyPart = Fact("body_part"),
            ViewPosition = Fact("view_position"),
            Laterality = Fact("laterality"),
            Sex = Fact("sex"),
            Age = Fact("age") is { } age && double.TryParse(age, NumberStyles.Float, c, out var years) ? years : double.NaN,
            StudyDate = Fact("study_date") is { } date && DateOnly.TryParseExact(date, "yyyy-MM-dd", c, DateTimeStyles.None, out var day) ? day : null,
            StudyInstanceUid = Fact("study_instance_uid"),
            SeriesInstanceUid = Fact("series_instance_uid"),
            PatientHash = Fact("patient_hash"),
            Labels = record.Labels.Select(intern).ToArray(),
        };
    }
}

/// <summary>The catalogued facts that filters test for equality, each with a posting list per value.</summary>
internal enum CatalogFact
{
    Modality,
    BodyPart,
    ViewPosition,
    Laterality,
    Sex,
    Label,
}

/// <summary>
/// In-memory catalog of every stored case's <see cref="CatalogEntry"/>, the payload index beside the vector
/// index: filters are evaluated on it inside the graph search (one dictionary lookup per visited node, where a
/// store read would parse a whole record), and deletes by series, study or patient and the statistics read it
/// instead of scanning the store. Built from the store on open and kept in step by the collection's writes.
/// For the facts filters test for equality (<see cref="CatalogFact"/>) it also keeps the ids of the cases with
/// each value, which a filter hands the index as candidates so a selective one is scored without testing every case.
/// </summary>
/// <remarks>
/// About 150 bytes a case for the entries (repeated values such as modality, UIDs shared by a study and labels are
/// interned), plus 11 to 21 bytes for each fact value a case has in the posting lists (one 8-byte slot in a table
/// kept 3/8 to 3/4 full): a case with all five header facts and two labels adds about 110 bytes.
/// Thread-safe: writers of one id are serialised, so its entry and its lists change together; a case changing value
/// joins its new value's list before it leaves the old one, so a search reading the lists of both values at once
/// (<see cref="Posting.CopyAll"/>) finds it in at least one.
/// </remarks>
public sealed class CaseCatalog
{
    private const int WriterStripes = 64;

    private readonly ConcurrentDictionary<ulong, CatalogEntry> _entries = new();
    private readonly ConcurrentDictionary<string, string> _strings = new(StringComparer.Ordinal);
    // By CatalogFact; header facts compare as CaseFilter compares them, labels exactly. A list left empty stays:
    // values are a small vocabulary, and a search may hold the list.
    private readonly ConcurrentDictionary<string, Posting>[] _postings =
    [
        new(StringComparer.OrdinalIgnoreCase), new(StringComparer.OrdinalIgnoreCase), new(StringComparer.OrdinalIgnoreCase),
        new(StringComparer.OrdinalIgnoreCase), new(StringComparer.OrdinalIgnoreCase), new(StringComparer.Ordinal),
    ];
    private readonly Lock[] _writers = [.. Enumerable.Range(0, WriterStripes).Select(_ => new Lock())];

    public int Count => _entries.Count;

    public void Set(CaseRecord record)
    {
        var entry = CatalogEntry.From(record, Intern);
        lock (WriterOf(record.Id))
        {
            _entries.TryGetValue(record.Id, out var old);
            // New values in before the entry changes, old ones out after: a search between the steps finds the
            // case in the list of whichever value it reads, and Accepts decides by the entry.
            Post(record.Id, entry, old, add: true);
            _entries[record.Id] = entry;
            if (old is not null) Post(record.Id, old, entry, add: false);
        }
    }

    public void Remove(ulong id)
    {
        lock (WriterOf(id))
        {
            if (_entries.TryRemove(id, out var old)) Post(id, old, null, add: false);
        }
    }

    public bool TryGet(ulong id, out CatalogEntry entry) => _entries.TryGetValue(id, out entry!);

    public IEnumerable<KeyValuePair<ulong, CatalogEntry>> Entries => _entries;

    /// <summary>The cases whose <paramref name="fact"/> is <paramref name="value"/>; null when no case ever had it.</summary>
    internal Posting? PostingOf(CatalogFact fact, string value) => _postings[(int)fact].TryGetValue(value, out var posting) ? posting : null;

    /// <summary>Adds <paramref name="id"/> to, or removes it from, the lists of <paramref name="entry"/>'s values that <paramref name="other"/> lacks.</summary>
    private void Post(ulong id, CatalogEntry entry, CatalogEntry? other, bool add)
    {
        Post(id, CatalogFact.Modality, entry.Modality, other?.Modality, add);
        Post(id, CatalogFact.BodyPart, entry.BodyPart, other?.BodyPart, add);
        Post(id, CatalogFact.ViewPosition, entry.ViewPosition, other?.ViewPosition, add);
        Post(id, CatalogFact.Laterality, entry.Laterality, other?.Laterality, add);
        Post(id, CatalogFact.Sex, entry.Sex, other?.Sex, add);
        foreach (var label in entry.Labels)
            if (other is null || Array.IndexOf(other.Labels, label) < 0)
                Post(id, CatalogFact.Label, label, null, add);
    }

    private void Post(ulong id, CatalogFact fact, string? value, string? other, bool add)
    {
        var lists = _postings[(int)fact];
        if (value is null || (other is not null && lists.Comparer.Equals(value, other))) return;
        if (add) lists.GetOrAdd(value, static _ => new Posting()).Add(id);
        else if (lists.TryGetValue(value, out var posting)) posting.Remove(id);
    }

    private Lock WriterOf(ulong id) => _writers[(int)(id % WriterStripes)];

    private string Intern(string value) => _strings.GetOrAdd(value, value);
}

/// <summary>
/// The ids of the cases with one value of one fact: a set of ids in an open-addressing table (linear probing, 0
/// marks a free slot, id 0 is kept aside), locked for each change and each copy.
/// </summary>
internal sealed class Posting
{
    private const int MinimumSlots = 16;

    private static long s_created;

    /// <summary>The order <see cref="CopyAll"/> locks lists in: one order for every caller, so two never deadlock.</summary>
    public static readonly Comparison<Posting> LockOrder = static (a, b) => a._rank.CompareTo(b._rank);

    private readonly long _rank = Interlocked.Increment(ref s_created);
    private readonly Lock _lock = new();
    private ulong[] _slots = new ulong[MinimumSlots];
    private bool _hasZero;
    private int _count;

    /// <summary>Ids in the list now.</summary>
    public int Count => Volatile.Read(ref _count);

    public void Add(ulong id)
    {
        lock (_lock)
        {
            if (id == 0)
            {
                if (!_hasZero) Volatile.Write(ref _count, _count + 1);
                _hasZero = true;
                return;
            }
            // At most 3/4 full: longer probe runs cost more than the slots saved.
            if ((_count + 1) * 4L > _slots.Length * 3L) Grow();
            if (Insert(_slots, id)) Volatile.Write(ref _count, _count + 1);
        }
    }

    public void Remove(ulong id)
    {
        lock (_lock)
        {
            if (id == 0)
            {
                if (_hasZero) Volatile.Write(ref _count, _count - 1);
                _hasZero = false;
                return;
            }
            int mask = _slots.Length - 1;
            int hole = Home(id, mask);
            while (_slots[hole] != id)
            {
                if (_slots[hole] == 0) return;
                hole = (hole + 1) & mask;
            }
            // Later ids of the probe run move back into the hole, so that no lookup stops short at it; an id only
            // moves to a slot between its home and where it is.
            for (int next = (hole + 1) & mask; _slots[next] != 0; next = (next + 1) & mask)
            {
                if (((next - Home(_slots[next], mask)) & mask) < ((next - hole) & mask)) continue;
                _slots[hole] = _slots[next];
                hole = next;
            }
            _slots[hole] = 0;
            Volatile.Write(ref _count, _count - 1);
        }
    }

    /// <summary>
    /// Writes the ids of all <paramref name="postings"/> (in <see cref="LockOrder"/>) into
    /// <paramref name="destination"/>, an id in several lists once for each, and returns how many that is; when that
    /// is more than it holds, writes nothing. The lists are locked together, so that the copy is of one moment:
    /// copied one after the other, a case moving from a list not yet copied to one already copied would be missed.
    /// Writers hold one list's lock at a time, so they cannot deadlock with this.
    /// </summary>
    public static int CopyAll(ReadOnlySpan<Posting> postings, Span<ulong> destination)
    {
        int locked = 0;
        try
        {
            long total = 0;
            foreach (var posting in postings)
            {
                posting._lock.Enter();
                locked++;
                total += posting._count;
            }
            if (total > destination.Length) return (int)Math.Min(total, int.MaxValue);
            int written = 0;
            foreach (var posting in postings)
            {
                if (posting._hasZero) destination[written++] = 0;
                foreach (ulong id in posting._slots)
                    if (id != 0)
                        destination[written++] = id;
            }
            return written;
        }
        finally
        {
            for (int i = locked - 1; i >= 0; i--) postings[i]._lock.Exit();
        }
    }

    private void Grow()
    {
        var grown = new ulong[_slots.Length * 2];
        foreach (ulong id in _slots)
            if (id != 0)
                Insert(grown, id);
        _slots = grown;
    }

    private static bool Insert(ulong[] slots, ulong id)
    {
        int mask = slots.Length - 1;
        for (int at = Home(id, mask); ; at = (at + 1) & mask)
        {
            if (slots[at] == id) return false;
            if (slots[at] != 0) continue;
            slots[at] = id;
            return true;
        }
    }

    // Fibonacci hashing: spreads sequential ids (tests, volumes) as well as hashed ones.
    private static int Home(ulong id, int mask) => (int)((id * 0x9E3779B97F4A7C15UL) >> 32) & mask;
}
