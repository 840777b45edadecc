using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace MedSearch.Server.Security;

/// <summary>An API key as stored: its name, what it may do, and the SHA-256 of its secret (never the secret).</summary>
public sealed record ApiKey(string Id, Permission Permission, byte[] Hash, DateTimeOffset Created);

/// <summary>
/// The API keys file: JSON, `{"keys":[{"id","permission","sha256","created"}]}`. Secrets are 256 random bits, so an
/// unsalted SHA-256 cannot be reversed by guessing; the file still gets owner-only permissions. The server reads it
/// at start and again when it changes (<see cref="ApiKeys"/>); `medsearch keys` edits it.
/// </summary>
public sealed partial class ApiKeyStore
{
    /// <summary>A recognisable prefix lets secret scanners and people tell a MedSearch key from other tokens.</summary>
    public const string SecretPrefix = "msk_";
    private const int SecretBytes = 32;
    private const int MaxSecretLength = 256;

    private readonly List<ApiKey> _keys;

    private ApiKeyStore(string path, List<ApiKey> keys)
    {
        Path = path;
        _keys = keys;
    }

    public string Path { get; }
    public IReadOnlyList<ApiKey> Keys => _keys;

    /// <summary>Key ids go into audit lines and messages, so they are kept to plain characters.</summary>
    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex IdPattern();

    /// <summary>Reads the file; with <paramref name="mustExist"/> false a missing file is an empty store (for `keys add`).</summary>
    public static ApiKeyStore Load(string path, bool mustExist = true)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path))
        {
            if (mustExist) throw new ServerOptionsException($"keys file {path} does not exist: create it with `medsearch keys add --keys {path} --name NAME --permission read|write`");
            return new ApiKeyStore(path, []);
        }
        KeysFile? file;
        try
        {
            file = JsonSerializer.Deserialize(File.ReadAllText(path), KeysFileJson.Default.KeysFile);
        }
        catch (JsonException e)
        {
            throw new ServerOptionsException($"keys file {path}: not valid JSON ({e.Message})");
        }
        var keys = new List<ApiKey>();
        foreach (var (entry, i) in (file?.Keys ?? []).Select((e, i) => (e, i)))
        {
            string where = $"keys file {path}: key {i + 1}";
            if (entry.Id is null || !IdPattern().IsMatch(entry.Id)) throw new ServerOptionsException($"{where}: id must be 1 to 64 letters, digits, '.', '_' or '-', got `{entry.Id}`");
            if (keys.Any(k => k.Id == entry.Id)) throw new ServerOptionsException($"{where}: id `{entry.Id}` appears twice");
            Permission permission;
            try { permission = MethodPermissions.Parse(entry.Permission ?? "", "permission"); }
            catch (FormatException e) { throw new ServerOptionsException($"{where} ({entry.Id}): {e.Message}"); }
            if (entry.Sha256 is not { Length: 64 } hex || !hex.All(char.IsAsciiHexDigit))
                throw new ServerOptionsException($"{where} ({entry.Id}): sha256 must be 64 hex digits");
            keys.Add(new ApiKey(entry.Id, permission, Convert.FromHexString(hex), entry.Created));
        }
        return new ApiKeyStore(path, keys);
    }

    /// <summary>Adds a key and returns its secret, which exists nowhere else afterwards: only its hash is kept.</summary>
    public string Add(string id, Permission permission)
    {
        if (!IdPattern().IsMatch(id)) throw new ArgumentException($"--name must be 1 to 64 letters, digits, '.', '_' or '-', got `{id}`");
        if (permission == Permission.None) throw new ArgumentException("--permission must be `read` or `write`");
        if (_keys.Any(k => k.Id == id)) throw new ArgumentException($"--name: a key named `{id}` already exists in {Path}; remove it first to replace it");
        string secret = SecretPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes));
        _keys.Add(new ApiKey(id, permission, Hash(secret), DateTimeOffset.UtcNow));
        return secret;
    }

    public bool Remove(string id) => _keys.RemoveAll(k => k.Id == id) > 0;

    /// <summary>Writes a temporary file and renames it over the old one, so that a crash never leaves half a file.</summary>
    public void Save()
    {
        var file = new KeysFile
        {
            Keys = _keys.Select(k => new KeyEntry { Id = k.Id, Permission = k.Permission.Name(), Sha256 = Convert.ToHexStringLower(k.Hash), Created = k.Created }).ToList(),
        };
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        string temporary = Path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temporary, options))
        {
            JsonSerializer.Serialize(stream, file, KeysFileJson.Default.KeysFile);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, Path, overwrite: true);
    }

    /// <summary>
    /// The key whose hash matches, or null. Every stored hash is compared in constant time and the loop never stops
    /// early, so the time taken says nothing about which key, or how much of one, matched.
    /// </summary>
    public ApiKey? Authenticate(string secret)
    {
        if (secret.Length is 0 or > MaxSecretLength) return null;
        var hash = Hash(secret);
        ApiKey? found = null;
        foreach (var key in _keys)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, key.Hash)) found = key;
        }
        return found;
    }

    private static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    internal sealed class KeysFile
    {
        public List<KeyEntry> Keys { get; set; } = [];
    }

    internal sealed class KeyEntry
    {
        public string? Id { get; set; }
        public string? Permission { get; set; }
        public string? Sha256 { get; set; }
        public DateTimeOffset Created { get; set; }
    }

    [JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
    [JsonSerializable(typeof(KeysFile))]
    internal sealed partial class KeysFileJson : JsonSerializerContext;
}
