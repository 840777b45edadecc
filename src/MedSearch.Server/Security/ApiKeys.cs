using Microsoft.Extensions.Logging;

namespace MedSearch.Server.Security;

/// <summary>
/// The keys the server checks, following the keys file: a key added or removed with `medsearch keys` takes effect
/// within a second, without a restart (revoking a leaked key must not wait for a maintenance window). A file that
/// becomes unreadable or empty keeps the keys last read, with a warning: a half-written edit must not lock
/// everyone out, nor let everyone in.
/// </summary>
public sealed class ApiKeys(ApiKeyStore initial, ILogger<ApiKeys> log)
{
    private static readonly TimeSpan CheckEvery = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private ApiKeyStore _store = initial;
    private DateTime _written = File.GetLastWriteTimeUtc(initial.Path);
    private long _checked = Environment.TickCount64;

    public ApiKey? Authenticate(string secret) => Current().Authenticate(secret);

    private ApiKeyStore Current()
    {
        long now = Environment.TickCount64;
        if (now - Volatile.Read(ref _checked) < CheckEvery.TotalMilliseconds) return Volatile.Read(ref _store);
        lock (_lock)
        {
            if (now - _checked < CheckEvery.TotalMilliseconds) return _store;
            _checked = now;
            var written = File.Exists(_store.Path) ? File.GetLastWriteTimeUtc(_store.Path) : DateTime.MinValue;
            if (written == _written) return _store;
            _written = written;
            try
            {
                var reloaded = ApiKeyStore.Load(_store.Path);
                if (reloaded.Keys.Count == 0) throw new ServerOptionsException($"keys file {_store.Path} has no keys");
                Volatile.Write(ref _store, reloaded);
                log.LogInformation("API keys: reloaded {Count} from {Path}", reloaded.Keys.Count, reloaded.Path);
            }
            catch (Exception e) when (e is ServerOptionsException or IOException or UnauthorizedAccessException)
            {
                log.LogWarning("API keys: keeping the {Count} keys last read; {Reason}", _store.Keys.Count, e.Message);
            }
            return _store;
        }
    }
}
