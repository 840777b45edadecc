using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;
using FASTER.core;
using Google.Protobuf;
using MedSearch.Storage.Records;

namespace MedSearch.Storage;

using Session = ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, CaseFunctions>;

/// <summary>
/// The record of truth: one <see cref="CaseRecord"/> per case id in a FASTER key-value store (key: the id as
/// 8 little-endian bytes, value: the serialized record), with its log and checkpoints under one directory.
/// </summary>
/// <remarks>
/// <para>
/// Durability is per checkpoint. A record is durable once a <see cref="Checkpoint"/> taken after its
/// <see cref="Upsert"/> (or <see cref="Delete"/>) has returned. Writes after the last completed checkpoint
/// are lost on a crash, and also on a clean <see cref="Dispose"/>, which does not checkpoint: reopening
/// recovers exactly the last checkpoint.
/// </para>
/// <para>
/// The log only grows: updates and deletes append, and the old bytes stay on disk until <see cref="Compact"/>
/// copies the live records forward and deletes the old log segments.
/// </para>
/// <para>
/// All members are safe to call from many threads, except <see cref="Dispose"/>, which must not race other
/// calls. FASTER sessions are single-threaded, so each call borrows one from a pool.
/// </para>
/// </remarks>
public sealed class CaseStore : IDisposable
{
    // Format 2 cuts the log into segment files of one page (format 1 used FASTER's 1 GiB), so that compaction
    // can delete every byte below the compacted range; the segment size is written in FORMAT because FASTER
    // addresses segments by it and it must never change for a store.
    private const int FormatVersion = 2;
    private const string FormatPrefix = "medsearch-store ";
    private const string SegmentPrefix = "log-segment-bytes ";
    private const string FormatFileName = "FORMAT";

    // A case with a 512-d float embedding serialises to about 2.2 KB: such values move through stack buffers,
    // larger ones through pooled memory.
    private const int InlineValueBytes = 4096;

    // Upsert and Delete read before they write to keep Count exact; writers of the same id are serialised on
    // one of these stripes so that read and write are one step. Case ids are hashes, so low bits spread well.
    private const int StripeCount = 256;

    // FASTER lays a record out as header + key + value, each 8-byte aligned, and a record may not span pages.
    private const int RecordOverheadBytes = 64;

    // Compaction pads the log to a segment boundary with a record under this key: 9 bytes, so that no case id
    // (8 bytes) can collide with it. It is deleted as soon as it is written.
    private static ReadOnlySpan<byte> FillerKey => [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

    // A filler's size on the log beyond its value bytes: 8 (record header) + 16 (4-byte length + 9-byte key,
    // 8-aligned) + 4 (value length). The smallest record takes 32 bytes.
    private const int FillerOverheadBytes = 28;
    private const int SmallestRecordBytes = 32;

    private const string LogFileName = "hlog";

    private readonly string _directory;
    private readonly IDevice _logDevice;
    private readonly DeviceLogCommitCheckpointManager _checkpointManager;
    private readonly FasterKV<SpanByte, SpanByte> _kv;
    private readonly CaseFunctions _functions = new();
    private readonly ConcurrentBag<Session> _sessions = [];
    private readonly Lock[] _stripes;
    private readonly Lock _checkpointLock = new();
    private readonly long _pageSize;
    private readonly long _segmentSize;
    private long _count;
    // Boxed so that readers on other threads never see a torn struct.
    private StrongBox<CheckpointToken>? _lastCheckpoint;
    private bool _disposed;

    private CaseStore(string directory, CaseStoreOptions options, long segmentSize, IDevice logDevice, DeviceLogCommitCheckpointManager checkpointManager)
    {
        _directory = directory;
        _logDevice = logDevice;
        _checkpointManager = checkpointManager;
        _pageSize = options.PageSize;
        _segmentSize = segmentSize;
        _stripes = new Lock[StripeCount];
        for (int i = 0; i < _stripes.Length; i++) _stripes[i] = new Lock();
        _kv = new FasterKV<SpanByte, SpanByte>(new FasterKVSettings<SpanByte, SpanByte>
        {
            // FASTER sizes the hash index in bytes; each bucket is one 64-byte cache line.
            IndexSize = options.IndexSize * 64,
            LogDevice = logDevice,
            PageSize = options.PageSize,
            SegmentSize = segmentSize,
            MemorySize = options.MemorySize,
            ReadCacheEnabled = options.ReadCacheEnabled,
            // FASTER's default read cache is 16 GiB as well; it gets the same budget as the log.
            ReadCacheMemorySize = options.MemorySize,
            ReadCachePageSize = options.PageSize,
            CheckpointManager = checkpointManager,
            // FASTER's own recovery on construction swallows every error and opens empty; Recover() below does not.
            TryRecoverLatest = false,
        });
    }

    /// <summary>Live records (upserted and not deleted since).</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>The checkpoint this store recovered to or last took; null for a store never checkpointed.</summary>
    public CheckpointToken? LastCheckpoint => Volatile.Read(ref _lastCheckpoint)?.Value;

    /// <summary>Log address after the newest record: positions at or above it are not written yet.</summary>
    public long TailAddress => _kv.Log.TailAddress;

    /// <summary>Log address of the oldest record kept: compaction moves it up, and nothing below it can be read.</summary>
    public long BeginAddress => _kv.Log.BeginAddress;

    /// <summary>
    /// Opens the store in <paramref name="directory"/> (created when missing or empty), recovering its latest
    /// checkpoint. Layout: <c>FORMAT</c>, <c>log/</c> (FASTER log segments, one page each), <c>checkpoints/</c>.
    /// </summary>
    /// <exception cref="StoreException">
    /// The directory holds another store format, something that is not a store, or a checkpoint that cannot be
    /// recovered; its pages are larger than the log segments it was created with; or it cannot be created.
    /// </exception>
    public static CaseStore Open(string directory, CaseStoreOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var full = Path.GetFullPath(directory);
        long segmentSize = PrepareDirectory(full, options.PageSize);
        if (options.PageSize > segmentSize)
            throw new StoreException(
                $"store {full} was created with {segmentSize}-byte log segments; {nameof(CaseStoreOptions)}.{nameof(CaseStoreOptions.PageSize)} " +
                $"({options.PageSize}) must not exceed that, as a page must fit in one segment");

        IDevice? logDevice = null;
        DeviceLogCommitCheckpointManager? checkpointManager = null;
        CaseStore? store = null;
        try
        {
            // recoverDevice: find the segments already on disk so that recovered addresses can be read back.
            logDevice = Devices.CreateLogDevice(Path.Combine(full, "log", LogFileName), recoverDevice: true);
            checkpointManager = new DeviceLogCommitCheckpointManager(
                new LocalStorageNamedDeviceFactory(),
                new DefaultCheckpointNamingScheme(Path.Combine(full, "checkpoints")),
                removeOutdated: true);
            store = new CaseStore(full, options, segmentSize, logDevice, checkpointManager);
            store.Recover();
            return store;
        }
        catch (Exception e)
        {
            if (store is not null) store.Dispose();
            else
            {
                checkpointManager?.Dispose();
                logDevice?.Dispose();
            }
            if (e is StoreException) throw;
            throw new StoreException($"store {full} cannot be opened: {e.Message}", e);
        }
    }

    /// <summary>Inserts or replaces the record stored under <c>record.Id</c>.</summary>
    /// <exception cref="ArgumentException">The serialized record does not fit in one log page.</exception>
    public unsafe void Upsert(CaseRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        ObjectDisposedException.ThrowIf(_disposed, this);
        int size = record.CalculateSize();
        if (size > _pageSize - RecordOverheadBytes)
            throw new ArgumentException(
                $"case {record.Id} serialises to {size} bytes; a log page of {_pageSize} bytes holds at most {_pageSize - RecordOverheadBytes}. " +
                $"Raise {nameof(CaseStoreOptions)}.{nameof(CaseStoreOptions.PageSize)}", nameof(record));

        byte[]? rented = null;
        Span<byte> value = size <= InlineValueBytes ? stackalloc byte[InlineValueBytes] : (rented = ArrayPool<byte>.Shared.Rent(size));
        value = value[..size];
        Span<byte> keyBytes = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(keyBytes, record.Id);
        var session = RentSession();
        try
        {
            record.WriteTo(value);
            fixed (byte* k = keyBytes)
            fixed (byte* v = value)
            {
                var key = SpanByte.FromPointer(k, keyBytes.Length);
                var val = SpanByte.FromPointer(v, value.Length);
                lock (Stripe(record.Id))
                {
                    var probe = default(SpanByteAndMemory);
                    bool existed = Read(session, record.Id, ref key, ref probe);
                    var status = session.Upsert(ref key, ref val);
                    if (status.IsPending) session.CompletePending(wait: true);
                    if (!existed) Interlocked.Increment(ref _count);
                }
            }
        }
        finally
        {
            ReturnSession(session);
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Reads the live record of <paramref name="id"/>, from memory or, for older records, from disk.</summary>
    public unsafe bool TryGet(ulong id, [NotNullWhen(true)] out CaseRecord? record)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Span<byte> keyBytes = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(keyBytes, id);
        Span<byte> inline = stackalloc byte[InlineValueBytes];
        var session = RentSession();
        try
        {
            fixed (byte* k = keyBytes)
            fixed (byte* b = inline)
            {
                var key = SpanByte.FromPointer(k, keyBytes.Length);
                var output = new SpanByteAndMemory(SpanByte.FromPointer(b, inline.Length));
                if (!Read(session, id, ref key, ref output))
                {
                    record = null;
                    return false;
                }
                using var pooled = output.Memory;
                var bytes = output.IsSpanByte ? output.SpanByte.AsReadOnlySpan() : pooled.Memory.Span[..output.Length];
                record = Parse(id, bytes);
                return true;
            }
        }
        finally
        {
            ReturnSession(session);
        }
    }

    /// <summary>
    /// Reads the cases <paramref name="ids"/>[<paramref name="start"/>..+<paramref name="count"/>] as search hits, into the
    /// same places of <paramref name="records"/> (null: no such case): without the embedding, which no hit needs, and
    /// without the thumbnail unless <paramref name="withThumbnail"/> (both left empty); a 512-d embedding is 2 KiB of each
    /// record's parse and a DICOM case's thumbnail 3 KiB (median; 10 KiB at p90). Records evicted to disk are read
    /// together, and awaited rather than waited on: on Linux FASTER's disk reads run on the thread pool, so searches
    /// that block pool threads on them starve it under load (64 clients on 100k DICOM-sized cases, most on disk:
    /// 3 searches a second, 22 s each).
    /// </summary>
    public ValueTask ReadHitsAsync(ulong[] ids, int start, int count, bool withThumbnail, CaseRecord?[] records) =>
        ReadHits(ids, start, count, withThumbnail, records, wait: false);

    /// <summary><see cref="ReadHitsAsync"/> waiting for the disk on this thread: for batch jobs, which hold few threads.</summary>
    public void ReadHits(ulong[] ids, int start, int count, bool withThumbnail, CaseRecord?[] records) =>
        ReadHits(ids, start, count, withThumbnail, records, wait: true).GetAwaiter().GetResult();

    private async ValueTask ReadHits(ulong[] ids, int start, int count, bool withThumbnail, CaseRecord?[] records, bool wait)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var session = RentSession();
        try
        {
            IEnumerable<int> asked = Enumerable.Range(start, count);
            while (StartHits(session, ids, asked, withThumbnail, records) is { } pending)
            {
                CompletedOutputIterator<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty> completed;
                if (wait) session.CompletePendingWithOutputs(out completed, wait: true);
                else completed = await session.CompletePendingWithOutputsAsync();
                using (completed) FinishHits(completed, ids, pending, withThumbnail, records);
                // A read FASTER retried inside CompletePending (a checkpoint was changing versions) comes back without
                // an output: those are asked again.
                asked = pending;
            }
        }
        catch
        {
            // It may still have reads in flight: a fresh session takes its place.
            session.Dispose();
            throw;
        }
        ReturnSession(session);
    }

    /// <summary>Issues the reads of the places <paramref name="asked"/>; those answered from memory are parsed at once. The places that went to disk, or null.</summary>
    private unsafe List<int>? StartHits(Session session, ulong[] ids, IEnumerable<int> asked, bool withThumbnail, CaseRecord?[] records)
    {
        List<int>? pending = null;
        Span<byte> keyBytes = stackalloc byte[sizeof(ulong)];
        fixed (byte* k = keyBytes)
        {
            foreach (int i in asked)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(keyBytes, ids[i]);
                var key = SpanByte.FromPointer(k, keyBytes.Length);
                var input = default(SpanByte);
                // Heap output only: a read that goes pending keeps this struct until it completes, after this frame.
                var output = default(SpanByteAndMemory);
                output.ConvertToHeap();
                var status = session.Read(ref key, ref input, ref output);
                if (status.IsPending)
                {
                    (pending ??= []).Add(i);
                    continue;
                }
                records[i] = Hit(ids[i], status, ref output, withThumbnail);
            }
        }
        return pending;
    }

    /// <summary>Parses the completed reads into their places, and takes those places off <paramref name="pending"/>.</summary>
    private void FinishHits(CompletedOutputIterator<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty> completed,
        ulong[] ids, List<int> pending, bool withThumbnail, CaseRecord?[] records)
    {
        while (completed.Next())
        {
            ulong id = BinaryPrimitives.ReadUInt64LittleEndian(completed.Current.Key.AsReadOnlySpan());
            var hit = Hit(id, completed.Current.Status, ref completed.Current.Output, withThumbnail);
            // Every place that asked for it: an id may be listed twice.
            pending.RemoveAll(i =>
            {
                if (ids[i] != id) return false;
                records[i] = hit;
                return true;
            });
        }
    }

    private CaseRecord? Hit(ulong id, Status status, ref SpanByteAndMemory output, bool withThumbnail)
    {
        using var memory = output.Memory;
        if (status.IsFaulted) throw new StoreException($"reading case {id} from store {_directory} failed");
        return status.Found ? ParseHit(id, memory.Memory.Span[..output.Length], withThumbnail) : null;
    }

    /// <summary>
    /// Deletes the record of <paramref name="id"/>; false when there was none. Reads miss it at once; its bytes
    /// stay in the log files until the next <see cref="Compact"/>.
    /// </summary>
    public unsafe bool Delete(ulong id)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Span<byte> keyBytes = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(keyBytes, id);
        var session = RentSession();
        try
        {
            fixed (byte* k = keyBytes)
            {
                var key = SpanByte.FromPointer(k, keyBytes.Length);
                lock (Stripe(id))
                {
                    var probe = default(SpanByteAndMemory);
                    if (!Read(session, id, ref key, ref probe)) return false;
                    var status = session.Delete(ref key);
                    if (status.IsPending) session.CompletePending(wait: true);
                    Interlocked.Decrement(ref _count);
                    return true;
                }
            }
        }
        finally
        {
            ReturnSession(session);
        }
    }

    /// <summary>
    /// Every live record once, in its latest version. Not a snapshot: records written while the enumeration
    /// runs may or may not appear. Each enumeration builds a temporary in-memory table (FASTER's iterator
    /// de-duplicates superseded versions that way), so it is meant for rebuilds, not per-request use.
    /// </summary>
    public IEnumerable<CaseRecord> Scan()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return ScanLive();
    }

    private IEnumerable<CaseRecord> ScanLive()
    {
        // The store-level Iterate() without functions is obsolete and throws in FASTER 2.x.
        using var iterator = _kv.Iterate<SpanByte, SpanByteAndMemory, Empty, CaseFunctions>(_functions);
        while (iterator.GetNext(out _))
            yield return ParseCurrent(iterator);
    }

    /// <summary>
    /// Every write in the log from <paramref name="position"/> up to the tail when the call began, in log order:
    /// a case written twice appears twice and its latest version comes last (FASTER writes a newer version at a
    /// higher address, or in place over the same one). This is how derived data tagged with a checkpoint's
    /// <see cref="CheckpointToken.Position"/> catches up: replaying the changes in order ends in the store's state,
    /// because a fold-over checkpoint makes everything below its position read-only.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="position"/> lies below <see cref="BeginAddress"/> (compaction removed that part of the log) or
    /// above the tail.
    /// </exception>
    public IEnumerable<StoreChange> ChangesSince(long position)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long begin = _kv.Log.BeginAddress, tail = _kv.Log.TailAddress;
        if (position < begin || position > tail)
            throw new ArgumentOutOfRangeException(nameof(position), position,
                $"store {_directory}: the log holds addresses {begin} to {tail}; position {position} is outside it");
        return ScanChanges(position, tail);
    }

    private IEnumerable<StoreChange> ScanChanges(long from, long to)
    {
        using var iterator = _kv.Log.Scan(from, to);
        while (iterator.GetNext(out var info))
        {
            var key = iterator.GetKey().AsReadOnlySpan();
            // Compaction's filler is not a case.
            if (key.Length != sizeof(ulong)) continue;
            ulong id = BinaryPrimitives.ReadUInt64LittleEndian(key);
            yield return new StoreChange(id, info.Tombstone ? null : Parse(id, iterator.GetValue().AsReadOnlySpan()));
        }
    }

    /// <summary>
    /// Takes a full fold-over checkpoint (hash index + log) and waits for it to be on disk; the previous
    /// checkpoint is then removed. Every write that returned before this call is durable afterwards.
    /// Concurrent writes may continue while it runs; they land in this checkpoint or the next.
    /// </summary>
    public CheckpointToken Checkpoint()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_checkpointLock) return CheckpointLocked();
    }

    /// <summary>
    /// Removes deleted and superseded records from disk, then checkpoints. Live records below the log's tail are
    /// copied to the tail, the log's begin address moves up past the old ones, a checkpoint makes that durable,
    /// and the log segment files wholly below the new begin are deleted before this returns: the bytes of a
    /// record deleted before the call are then in no file of the store. Returns that checkpoint (tag derived
    /// data with it, as with <see cref="Checkpoint"/>).
    /// </summary>
    /// <remarks>
    /// Reads continue throughout; writes pause while the log is padded to the next segment boundary (at most a
    /// page of filler, which the next compaction drops) and then continue. Costs a read of the whole log and a
    /// write of the live records. A crash before the checkpoint completes leaves the previous checkpoint and all
    /// its segment files intact.
    /// </remarks>
    public CheckpointToken Compact()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_checkpointLock)
        {
            long boundary = PadToSegmentBoundary();
            if (boundary > _kv.Log.BeginAddress)
            {
                // FASTER compacts only the read-only part of the log; this flushes up to the boundary first.
                _kv.Log.ShiftReadOnlyAddress(boundary, wait: true);
                var session = RentSession();
                try
                {
                    // Lookup, not Scan: Scan builds a temporary in-memory copy of every record in the range.
                    session.Compact(boundary, CompactionType.Lookup);
                }
                catch (Exception e)
                {
                    throw new StoreException($"compaction of store {_directory} failed: {e.Message}", e);
                }
                finally
                {
                    ReturnSession(session);
                }
            }
            var checkpoint = CheckpointLocked();
            DeleteSegmentsBelow(_kv.Log.BeginAddress);
            return checkpoint;
        }
    }

    /// <summary>Closes the files. Does not checkpoint: writes since the last <see cref="Checkpoint"/> are dropped.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        while (_sessions.TryTake(out var session)) session.Dispose();
        _kv.Dispose();
        _checkpointManager.Dispose();
        _logDevice.Dispose();
    }

    private CheckpointToken CheckpointLocked()
    {
        // Read before the checkpoint starts, so every record below it belongs to the checkpointed version.
        long position = _kv.Log.TailAddress;
        long sequence = (LastCheckpoint?.Sequence ?? 0) + 1;
        var cookie = new byte[2 * sizeof(long)];
        BinaryPrimitives.WriteInt64LittleEndian(cookie, position);
        BinaryPrimitives.WriteInt64LittleEndian(cookie.AsSpan(sizeof(long)), sequence);
        _kv.CommitCookie = cookie;
        bool taken;
        Guid token;
        try
        {
            (taken, token) = _kv.TakeFullCheckpointAsync(CheckpointType.FoldOver).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            throw new StoreException($"checkpoint of store {_directory} failed: {e.Message}", e);
        }
        if (!taken)
            throw new StoreException($"checkpoint of store {_directory} was refused: FASTER is already running another checkpoint or index resize");
        var checkpoint = new CheckpointToken(token, position, sequence);
        Volatile.Write(ref _lastCheckpoint, new StrongBox<CheckpointToken>(checkpoint));
        return checkpoint;
    }

    /// <summary>
    /// Appends filler records until the log's tail sits on a segment boundary, and returns it. Compacting up to
    /// a boundary leaves no old record in the segment that the copied live records start in, so deleting the
    /// segments below removes every old byte. Writers wait meanwhile (all stripes are held) so the tail stays put.
    /// </summary>
    private unsafe long PadToSegmentBoundary()
    {
        foreach (var stripe in _stripes) stripe.Enter();
        var session = RentSession();
        // Zeroed, not pooled: a pooled buffer could still hold a deleted record's bytes, which the filler would
        // then write back to disk.
        byte[]? filler = null;
        try
        {
            // Each filler ends a page; a segment of several pages (PageSize lowered since creation) takes several.
            for (int attempt = 0; attempt <= _segmentSize / _pageSize + 2; attempt++)
            {
                long tail = _kv.Log.TailAddress;
                if (tail % _segmentSize == 0) return tail;
                long room = _pageSize - tail % _pageSize;
                // Too little room for any record: FASTER starts the next page with it, so that filler fills a whole page.
                long bytes = room >= SmallestRecordBytes ? room : _pageSize;
                filler ??= new byte[_pageSize];
                fixed (byte* k = FillerKey)
                fixed (byte* v = filler)
                {
                    var key = SpanByte.FromPointer(k, FillerKey.Length);
                    var value = SpanByte.FromPointer(v, (int)(bytes - FillerOverheadBytes));
                    var status = session.Upsert(ref key, ref value);
                    if (status.IsPending) session.CompletePending(wait: true);
                    // In the mutable region this only sets the tombstone bit; otherwise it appends a tombstone and
                    // the next round pads again.
                    status = session.Delete(ref key);
                    if (status.IsPending) session.CompletePending(wait: true);
                }
            }
            throw new StoreException(
                $"store {_directory}: the log tail ({_kv.Log.TailAddress}) could not be padded to a {_segmentSize}-byte segment boundary for compaction");
        }
        finally
        {
            ReturnSession(session);
            foreach (var stripe in _stripes) stripe.Exit();
        }
    }

    /// <summary>
    /// Deletes the log segment files wholly below <paramref name="beginAddress"/>. FASTER's own truncation runs
    /// in the background and returns before the files are gone; deleting what is left makes the call's promise
    /// hold when it returns. Only called once a checkpoint with this begin address is durable: recovering an
    /// older checkpoint would need those files.
    /// </summary>
    private void DeleteSegmentsBelow(long beginAddress)
    {
        _kv.Log.Truncate();
        long firstKept = beginAddress / _segmentSize;
        try
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(_directory, "log"), LogFileName + ".*"))
                if (long.TryParse(Path.GetExtension(file).AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out long segment) && segment < firstKept)
                    File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StoreException($"store {_directory}: compacted log segments below address {beginAddress} could not be deleted: {e.Message}", e);
        }
    }

    private void Recover()
    {
        if (!_checkpointManager.GetLogCheckpointTokens().Any()) return;
        try
        {
            _kv.Recover();
        }
        catch (Exception e)
        {
            throw new StoreException(
                $"store {_directory} has a checkpoint that cannot be recovered ({e.Message}); its checkpoint metadata or log is damaged. " +
                "Restore the directory from a backup, or move it away to start an empty store", e);
        }
        // The cookie is the position, then (since checkpoints were counted) the sequence number.
        if (_kv.RecoveredCommitCookie is not { Length: sizeof(long) or 2 * sizeof(long) } cookie)
            throw new StoreException($"store {_directory}: the recovered checkpoint carries no log position; it was not written by {nameof(CaseStore)}");
        _kv.GetLatestCheckpointTokens(out var token, out _);
        long sequence = cookie.Length == 2 * sizeof(long) ? BinaryPrimitives.ReadInt64LittleEndian(cookie.AsSpan(sizeof(long))) : 0;
        _lastCheckpoint = new StrongBox<CheckpointToken>(new CheckpointToken(token, BinaryPrimitives.ReadInt64LittleEndian(cookie), sequence));

        // FASTER does not persist a record count, so the recovered log is counted once.
        using var iterator = _kv.Iterate<SpanByte, SpanByteAndMemory, Empty, CaseFunctions>(_functions);
        long live = 0;
        while (iterator.GetNext(out _)) live++;
        _count = live;
    }

    /// <summary>Reads <paramref name="key"/> into <paramref name="output"/>, waiting for the disk when the record was evicted.</summary>
    private bool Read(Session session, ulong id, ref SpanByte key, ref SpanByteAndMemory output)
    {
        var input = default(SpanByte);
        var status = session.Read(ref key, ref input, ref output);
        while (status.IsPending)
        {
            session.CompletePendingWithOutputs(out var completed, wait: true);
            using (completed)
            {
                if (completed.Next())
                {
                    status = completed.Current.Status;
                    output = completed.Current.Output;
                    break;
                }
            }
            // A read FASTER retried inside CompletePending (a checkpoint was changing versions) comes back without an
            // output: read again.
            status = session.Read(ref key, ref input, ref output);
        }
        if (status.IsFaulted)
            throw new StoreException($"reading case {id} from store {_directory} failed");
        return status.Found;
    }

    private CaseRecord Parse(ulong id, ReadOnlySpan<byte> bytes)
    {
        try
        {
            return CaseRecord.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new StoreException($"case {id} in store {_directory} is not a valid CaseRecord: {e.Message}", e);
        }
    }

    /// <summary>
    /// Parses <paramref name="bytes"/> with the embedding's field, and the thumbnail's unless <paramref name="withThumbnail"/>,
    /// cut out: protobuf parses a message's pieces, merged, as it parses the whole. Only the top-level tags are
    /// walked; bytes that do not walk go to <see cref="Parse"/>, whose error names the damage.
    /// </summary>
    private CaseRecord ParseHit(ulong id, ReadOnlySpan<byte> bytes, bool withThumbnail)
    {
        var record = new CaseRecord();
        int piece = 0, at = 0;
        while (at < bytes.Length)
        {
            int field = at;
            if (!TryReadVarint(bytes, ref at, out ulong tag) || !TrySkipValue(bytes, ref at, (int)(tag & 7)))
            {
                record = Parse(id, bytes);
                record.Embedding.Clear();
                if (!withThumbnail) record.Thumbnail = ByteString.Empty;
                return record;
            }
            ulong number = tag >> 3;
            if (number != CaseRecord.EmbeddingFieldNumber && (withThumbnail || number != CaseRecord.ThumbnailFieldNumber)) continue;
            Merge(id, record, bytes[piece..field]);
            piece = at;
        }
        Merge(id, record, bytes[piece..]);
        return record;
    }

    private void Merge(ulong id, CaseRecord record, ReadOnlySpan<byte> piece)
    {
        try
        {
            record.MergeFrom(piece);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new StoreException($"case {id} in store {_directory} is not a valid CaseRecord: {e.Message}", e);
        }
    }

    private static bool TryReadVarint(ReadOnlySpan<byte> bytes, ref int at, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && at < bytes.Length; shift += 7)
        {
            byte b = bytes[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return true;
        }
        return false;
    }

    /// <summary>Steps over one field's value of wire type <paramref name="wireType"/>; false for a group or damage.</summary>
    private static bool TrySkipValue(ReadOnlySpan<byte> bytes, ref int at, int wireType)
    {
        switch (wireType)
        {
            case 0: return TryReadVarint(bytes, ref at, out _);
            case 1: at += 8; break;
            case 2:
                if (!TryReadVarint(bytes, ref at, out ulong length) || length > (ulong)(bytes.Length - at)) return false;
                at += (int)length;
                break;
            case 5: at += 4; break;
            default: return false;
        }
        return at <= bytes.Length;
    }

    private CaseRecord ParseCurrent(IFasterScanIterator<SpanByte, SpanByte> iterator)
        => Parse(BinaryPrimitives.ReadUInt64LittleEndian(iterator.GetKey().AsReadOnlySpan()), iterator.GetValue().AsReadOnlySpan());

    private Lock Stripe(ulong id) => _stripes[(int)(id & (StripeCount - 1))];

    private Session RentSession() => _sessions.TryTake(out var session) ? session : _kv.For(_functions).NewSession<CaseFunctions>();

    private void ReturnSession(Session session) => _sessions.Add(session);

    /// <summary>Checks or creates the directory's FORMAT file; returns the store's log segment size.</summary>
    private static long PrepareDirectory(string directory, long pageSize)
    {
        var formatFile = Path.Combine(directory, FormatFileName);
        try
        {
            // A FORMAT.tmp alone is a creation that crashed before its rename: still an empty store.
            bool holdsOtherFiles = Directory.Exists(directory)
                && Directory.EnumerateFileSystemEntries(directory).Any(entry => entry != formatFile + ".tmp");
            long segmentSize;
            if (File.Exists(formatFile))
                segmentSize = CheckFormat(directory, File.ReadAllText(formatFile));
            else if (holdsOtherFiles)
                throw new StoreException(
                    $"store directory {directory} is not empty but has no {FormatFileName} file: it is not a MedSearch store, or its {FormatFileName} file was lost");
            else
                WriteFormat(directory, formatFile, segmentSize = pageSize);
            Directory.CreateDirectory(Path.Combine(directory, "log"));
            Directory.CreateDirectory(Path.Combine(directory, "checkpoints"));
            return segmentSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StoreException($"store directory {directory} cannot be prepared: {e.Message}", e);
        }
    }

    /// <summary>Checks a FORMAT file's text; returns the log segment size it records.</summary>
    private static long CheckFormat(string directory, string text)
    {
        var lines = text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var line = lines.Length > 0 ? lines[0] : "";
        if (!line.StartsWith(FormatPrefix, StringComparison.Ordinal)
            || !int.TryParse(line.AsSpan(FormatPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int version))
        {
            var shown = line.Length > 64 ? line[..64] + "..." : line;
            throw new StoreException($"store directory {directory}: {FormatFileName} reads \"{shown}\", expected \"{FormatPrefix}{FormatVersion}\"");
        }
        if (version > FormatVersion)
            throw new StoreException(
                $"store directory {directory} was written by a newer MedSearch (store format {version}); this build reads format {FormatVersion} only");
        if (version < FormatVersion)
            throw new StoreException(
                $"store directory {directory} has store format {version}, from before compaction; this build reads format {FormatVersion}. " +
                "Re-index the cases into a new data directory");
        var segment = lines.Length > 1 ? lines[1] : "";
        if (!segment.StartsWith(SegmentPrefix, StringComparison.Ordinal)
            || !long.TryParse(segment.AsSpan(SegmentPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long segmentSize)
            || segmentSize < 512 || (segmentSize & (segmentSize - 1)) != 0)
            throw new StoreException(
                $"store directory {directory}: {FormatFileName} has no valid \"{SegmentPrefix}N\" line (N a power of two, at least 512) after its version");
        return segmentSize;
    }

    private static void WriteFormat(string directory, string formatFile, long segmentSize)
    {
        Directory.CreateDirectory(directory);
        var temp = formatFile + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes($"{FormatPrefix}{FormatVersion}\n{SegmentPrefix}{segmentSize}\n"));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, formatFile, overwrite: true);
    }
}
