using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace MedSearch.Server.Security;

/// <summary>
/// The server certificate and, for mutual TLS, the authority that client certificates must chain to. Loaded once
/// at start so that a missing or unreadable file fails the start with the option's name.
/// </summary>
public sealed class TlsSettings
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    private readonly X509Certificate2 _certificate;
    private readonly X509Certificate2Collection? _clientAuthorities;

    private TlsSettings(X509Certificate2 certificate, X509Certificate2Collection? clientAuthorities)
    {
        _certificate = certificate;
        _clientAuthorities = clientAuthorities;
    }

    public bool RequiresClientCertificate => _clientAuthorities is not null;
    public string Subject => _certificate.Subject;

    /// <summary>Null when no certificate is configured.</summary>
    public static TlsSettings? Load(ServerOptions options)
    {
        if (options.TlsCertificatePath is null)
        {
            if (options.TlsKeyPath is not null) throw new ServerOptionsException("--tls-key needs --tls-cert");
            if (options.TlsClientCaPath is not null) throw new ServerOptionsException("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)");
            return null;
        }
        if (options.TlsKeyPath is null) throw new ServerOptionsException("--tls-cert needs --tls-key (the certificate's PEM private key)");

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(options.TlsCertificatePath, options.TlsKeyPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new ServerOptionsException($"--tls-cert {options.TlsCertificatePath} / --tls-key {options.TlsKeyPath}: cannot load a PEM certificate with its key ({e.Message})");
        }

        X509Certificate2Collection? authorities = null;
        if (options.TlsClientCaPath is not null)
        {
            authorities = [];
            try
            {
                authorities.ImportFromPemFile(options.TlsClientCaPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new ServerOptionsException($"--tls-client-ca {options.TlsClientCaPath}: cannot read PEM certificates ({e.Message})");
            }
            if (authorities.Count == 0) throw new ServerOptionsException($"--tls-client-ca {options.TlsClientCaPath}: no PEM certificate in the file");
        }
        return new TlsSettings(certificate, authorities);
    }

    public void Configure(HttpsConnectionAdapterOptions https)
    {
        https.ServerCertificate = _certificate;
        if (_clientAuthorities is null) return;
        https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
        // Only our authority counts, not the machine's trust store: a certificate any public CA issued is no client of ours.
        https.ClientCertificateValidation = (certificate, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(_clientAuthorities);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.ApplicationPolicy.Add(ClientAuthentication);
            return chain.Build(certificate);
        };
    }
}
