using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Kvm.Protocol.GoPlugin;

/// <summary>
/// An AutoMTLS server certificate made ahead of time: its DER (all the handshake line needs) and
/// its PKCS#8 key (needed only once the host dials).
/// </summary>
public sealed class SpareCertificate
{
    internal SpareCertificate(byte[] certificateDer, byte[] pkcs8Key)
    {
        CertificateDer = certificateDer;
        Pkcs8Key = pkcs8Key;
    }

    public byte[] CertificateDer { get; }

    internal byte[] Pkcs8Key { get; }

    /// <summary>The certificate with its private key, for TLS. This is the first OpenSSL use.</summary>
    public X509Certificate2 ToCertificate()
    {
        using var key = ECDsa.Create();
        key.ImportPkcs8PrivateKey(Pkcs8Key, out _);
        using var publicOnly = X509CertificateLoader.LoadCertificate(CertificateDer);
        return publicOnly.CopyWithPrivateKey(key);
    }
}

/// <summary>
/// Single-use AutoMTLS certificates made by an earlier plugin process after its own handshake.
/// Making a P-256 certificate means loading and initialising OpenSSL, which delays the handshake line
/// by ~35 ms; reading a spare does not touch OpenSSL at all. Each spare is claimed by exactly one
/// process (an atomic rename) and deleted as it is read, so a key still serves one plugin run only,
/// as go-plugin intends. Spares live in a private directory (0700, files 0600), preferably on the
/// user's runtime tmpfs, and are thrown away unused after <see cref="MaxAge"/>. The claim path
/// only renames and reads fixed slot names: no directory listing, no parsing library.
/// </summary>
public sealed class SpareCertificates
{
    /// <summary>Spares kept ready: terraform starts a few providers of one kind at once.</summary>
    public const int Slots = 2;

    public static readonly TimeSpan MaxAge = TimeSpan.FromHours(24);

    private static readonly UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public SpareCertificates(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Path.IsPathFullyQualified(directory))
        {
            throw new ArgumentException("the spare certificate directory must be absolute", nameof(directory));
        }
        Directory = directory;
    }

    public string Directory { get; }

    /// <summary>
    /// KVM_PLUGIN_CERT_CACHE (a directory, or <c>off</c>), else $XDG_RUNTIME_DIR/kvm-plugin-certs,
    /// else ~/.cache/kvm/plugin-certs; null when caching is off or no home is known.
    /// </summary>
    public static string? DefaultDirectory(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var configured = environment("KVM_PLUGIN_CERT_CACHE");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return string.Equals(configured, "off", StringComparison.OrdinalIgnoreCase) || !Path.IsPathFullyQualified(configured)
                ? null
                : configured;
        }
        if (environment("XDG_RUNTIME_DIR") is { Length: > 0 } runtime && Path.IsPathFullyQualified(runtime))
        {
            return Path.Combine(runtime, "kvm-plugin-certs");
        }
        if (environment("HOME") is { Length: > 0 } home && Path.IsPathFullyQualified(home))
        {
            return Path.Combine(home, ".cache", "kvm", "plugin-certs");
        }
        return null;
    }

    private string SlotPath(int slot) => Path.Combine(Directory, $"spare-{slot}");

    /// <summary>Takes one spare for this process, or null when none is usable.</summary>
    public SpareCertificate? TryClaim(DateTimeOffset? now = null)
    {
        if (OperatingSystem.IsWindows() || !IsPrivate())
        {
            return null;
        }
        var at = now ?? DateTimeOffset.UtcNow;
        for (var slot = 0; slot < Slots; slot++)
        {
            var claimed = $"{SlotPath(slot)}.{Environment.ProcessId}.claimed";
            try
            {
                // The rename is the claim: of several processes racing for one spare, one wins.
                File.Move(SlotPath(slot), claimed);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            try
            {
                if (Decode(File.ReadAllBytes(claimed), at) is { } spare)
                {
                    return spare;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Unreadable: drop it and try the next.
            }
            finally
            {
                TryDelete(claimed);
            }
        }
        return null;
    }

    /// <summary>Fills the empty slots with new spares; removes abandoned claims and writes.</summary>
    public void Refill(DateTimeOffset? now = null)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        try
        {
            if (!EnsurePrivateDirectory())
            {
                return;
            }
            var at = (now ?? DateTimeOffset.UtcNow).UtcDateTime;
            foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "spare-*.*"))
            {
                if (at - File.GetLastWriteTimeUtc(path) > TimeSpan.FromMinutes(10))
                {
                    TryDelete(path); // a claim or a write whose process died
                }
            }
            for (var slot = 0; slot < Slots; slot++)
            {
                if (!File.Exists(SlotPath(slot)))
                {
                    using var certificate = PluginCertificate.CreateServerCertificate();
                    Write(slot, certificate, now ?? DateTimeOffset.UtcNow);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            // Only start-up speed is lost: the next start makes its own certificate.
        }
    }

    /// <summary>Stores a certificate with its key in a slot (written aside, then renamed in; a filled slot is kept).</summary>
    public void Write(int slot, X509Certificate2 certificate, DateTimeOffset made)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentOutOfRangeException.ThrowIfNegative(slot);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, Slots);
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("spare certificates need unix file modes");
        }
        if (!EnsurePrivateDirectory())
        {
            throw new IOException($"{Directory} is not a private directory (0700, not a symbolic link)");
        }
        using var key = certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("the certificate has no ECDSA private key", nameof(certificate));
        var bytes = Encode(made, certificate.RawData, key.ExportPkcs8PrivateKey());
        var writing = $"{SlotPath(slot)}.{Environment.ProcessId}.writing";
        try
        {
            using (var stream = new FileStream(writing, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(writing, SlotPath(slot), overwrite: false);
        }
        catch (IOException) when (File.Exists(SlotPath(slot)))
        {
            // Another process filled the slot first.
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
            TryDelete(writing);
        }
    }

    private bool EnsurePrivateDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }
        System.IO.Directory.CreateDirectory(Directory, PrivateDirectory);
        return IsPrivate() && new DirectoryInfo(Directory).LinkTarget is null;
    }

    private bool IsPrivate()
    {
        try
        {
            return !OperatingSystem.IsWindows() && (File.GetUnixFileMode(Directory) & ~PrivateDirectory) == 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// File layout: made (Unix milliseconds, 8 bytes), certificate length (4 bytes), certificate DER,
    /// PKCS#8 key DER; integers big-endian.
    /// </summary>
    internal static byte[] Encode(DateTimeOffset made, byte[] certificateDer, byte[] pkcs8Key)
    {
        var bytes = new byte[12 + certificateDer.Length + pkcs8Key.Length];
        BinaryPrimitives.WriteInt64BigEndian(bytes, made.ToUnixTimeMilliseconds());
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), certificateDer.Length);
        certificateDer.CopyTo(bytes, 12);
        pkcs8Key.CopyTo(bytes, 12 + certificateDer.Length);
        return bytes;
    }

    /// <summary>The spare in <paramref name="bytes"/>; null unless fresh and both parts are whole DER values.</summary>
    internal static SpareCertificate? Decode(byte[] bytes, DateTimeOffset now)
    {
        if (bytes.Length < 12)
        {
            return null;
        }
        var made = BinaryPrimitives.ReadInt64BigEndian(bytes);
        var age = now.ToUnixTimeMilliseconds() - made;
        if (age < -TimeSpan.FromMinutes(5).TotalMilliseconds || age > MaxAge.TotalMilliseconds)
        {
            return null;
        }
        var length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(8));
        if (length <= 0 || length > bytes.Length - 12)
        {
            return null;
        }
        var certificate = bytes.AsSpan(12, length);
        var key = bytes.AsSpan(12 + length);
        return IsOneDerSequence(certificate) && IsOneDerSequence(key) ? new SpareCertificate(certificate.ToArray(), key.ToArray()) : null;
    }

    /// <summary>A whole DER SEQUENCE and nothing after it (checked by hand: no ASN.1 assembly before the line).</summary>
    internal static bool IsOneDerSequence(ReadOnlySpan<byte> der)
    {
        if (der.Length < 2 || der[0] != 0x30)
        {
            return false;
        }
        long length = der[1];
        var header = 2;
        if (length >= 0x80)
        {
            var octets = (int)length & 0x7F;
            if (octets is 0 or > 4 || der.Length < 2 + octets)
            {
                return false;
            }
            length = 0;
            foreach (var b in der.Slice(2, octets))
            {
                length = (length << 8) | b;
            }
            header += octets;
        }
        return header + length == der.Length;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Refill removes leftovers later.
        }
    }
}
