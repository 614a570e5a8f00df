using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kvm.Protocol.Grpc;

namespace Kvm.Protocol.GoPlugin;

/// <summary>The throw-away certificates of go-plugin's AutoMTLS.</summary>
public static class PluginCertificate
{
    /// <summary>
    /// A fresh self-signed ECDSA P-256 server certificate, as go-plugin's client accepts it:
    /// DNS SAN localhost (Go ignores the CN), serverAuth for Kestrel plus clientAuth as go-plugin's
    /// own template has, a positive serial (Go 1.23 rejects negative ones), and a NotBefore in
    /// the past so small clock differences don't matter.
    /// </summary>
    public static X509Certificate2 CreateServerCertificate(DateTimeOffset? now = null)
    {
        var issued = now ?? DateTimeOffset.UtcNow;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=localhost, O=kvm"), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment
            | X509KeyUsageFlags.KeyAgreement | X509KeyUsageFlags.KeyCertSign, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x01); // positive, and no leading zero byte to strip
        var generator = X509SignatureGenerator.CreateForECDsa(key);
        using var unsigned = request.Create(request.SubjectName, generator, issued.AddMinutes(-5), issued.AddYears(10), serial);
        return unsigned.CopyWithPrivateKey(key);
    }

    /// <summary>
    /// DER bytes of every CERTIFICATE block in a PEM text (PLUGIN_CLIENT_CERT). Parsed by hand: the
    /// framework's PemEncoding would load the cryptography assembly before the handshake line.
    /// </summary>
    public static IReadOnlyList<byte[]> ParsePemCertificates(string pem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        const string Begin = "-----BEGIN CERTIFICATE-----";
        const string End = "-----END CERTIFICATE-----";
        var result = new List<byte[]>();
        var at = 0;
        while ((at = pem.IndexOf(Begin, at, StringComparison.Ordinal)) >= 0)
        {
            var body = at + Begin.Length;
            var end = pem.IndexOf(End, body, StringComparison.Ordinal);
            if (end < 0)
            {
                break;
            }
            try
            {
                // Convert skips the line breaks and spaces between base64 characters.
                result.Add(Convert.FromBase64String(pem[body..end]));
            }
            catch (FormatException)
            {
                // Not a certificate block after all; a pin cannot match it anyway.
            }
            at = end + End.Length;
        }
        return result;
    }

    /// <summary>A pinning check: the peer must present exactly one of these DER certificates.</summary>
    public static Func<X509Certificate2, bool> PinTo(IReadOnlyList<byte[]> allowed)
    {
        ArgumentNullException.ThrowIfNull(allowed);
        var copy = allowed.Select(a => a.ToArray()).ToArray();
        return certificate => certificate is not null && copy.Any(a => a.AsSpan().SequenceEqual(certificate.RawData));
    }
}
