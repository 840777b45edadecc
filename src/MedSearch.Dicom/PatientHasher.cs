using System.Security.Cryptography;
using System.Text;

namespace MedSearch.Dicom;

/// <summary>
/// Pseudonymises Patient ID: HMAC-SHA256 under a per-installation secret key, so equal IDs link across files
/// without the ID itself ever being stored, and without the key nobody can test a guessed ID against a hash.
/// </summary>
public sealed class PatientHasher
{
    public const int KeyBytes = 32;
    public const string KeyFileName = "patient-key";

    private readonly byte[] _key;

    public PatientHasher(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeyBytes) throw new ArgumentException($"patient key must be {KeyBytes} bytes, not {key.Length}", nameof(key));
        _key = key.ToArray();
    }

    /// <summary>The first 32 hex digits (128 bits) of HMAC-SHA256(key, UTF-8 of the trimmed ID); null for an empty ID.</summary>
    public string? Hash(string? patientId)
    {
        var id = patientId?.Trim();
        if (string.IsNullOrEmpty(id)) return null;
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(id), mac);
        return Convert.ToHexStringLower(mac[..16]);
    }

    /// <summary>
    /// Reads <c>patient-key</c> from <paramref name="dataDirectory"/>, creating it (32 random bytes, mode 0600) on
    /// first use. Losing the key unlinks every stored hash from new ones, so an existing file of the wrong size is
    /// an error, never silently replaced.
    /// </summary>
    public static byte[] OpenOrCreateKey(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, KeyFileName);
        if (!File.Exists(path))
        {
            // Written whole under a temporary name, then moved without overwrite: a concurrent opener sees either
            // no key or a complete one, and the loser of a race adopts the winner's.
            var key = RandomNumberGenerator.GetBytes(KeyBytes);
            var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(key);
                stream.Flush(flushToDisk: true);
            }
            try
            {
                File.Move(temporary, path, overwrite: false);
                return key;
            }
            catch (IOException) when (File.Exists(path))
            {
                File.Delete(temporary);
            }
        }
        var existing = File.ReadAllBytes(path);
        if (existing.Length != KeyBytes)
            throw new InvalidDataException($"{path} holds {existing.Length} bytes; a patient key is {KeyBytes}");
        return existing;
    }
}
