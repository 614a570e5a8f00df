using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kvm.Protocol.GoPlugin;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Health;

namespace Kvm.Protocol.Tests;

/// <summary>AutoMTLS certificates made ahead of time: each used once, private, and a working TLS identity.</summary>
public sealed class SpareCertificateTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "kvm-spares-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private string[] Files() => Directory.Exists(_directory) ? Directory.GetFiles(_directory).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray() : [];

    [Fact]
    public void Refill_fills_every_slot_privately_and_each_spare_is_claimed_once()
    {
        var store = new SpareCertificates(_directory);
        store.Refill();

        Assert.Equal(["spare-0", "spare-1"], Files());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_directory));
        Assert.All(Directory.GetFiles(_directory), f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));

        var first = store.TryClaim();
        var second = store.TryClaim();
        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.Null(store.TryClaim());
        Assert.False(first.CertificateDer.AsSpan().SequenceEqual(second.CertificateDer), "two claims returned one certificate");
        Assert.Empty(Files()); // claimed spares are deleted as they are read
    }

    [Fact]
    public void A_claimed_spare_is_the_certificate_with_its_own_private_key()
    {
        var store = new SpareCertificates(_directory);
        store.Refill();
        var spare = store.TryClaim()!;

        using var certificate = spare.ToCertificate();
        using var key = certificate.GetECDsaPrivateKey();

        Assert.Equal(spare.CertificateDer, certificate.RawData);
        Assert.NotNull(key);
        var data = "handshake"u8.ToArray();
        using var publicKey = certificate.GetECDsaPublicKey()!;
        Assert.True(publicKey.VerifyData(data, key.SignData(data, HashAlgorithmName.SHA256), HashAlgorithmName.SHA256));
        Assert.Contains("localhost", Assert.Single(certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>()).EnumerateDnsNames());
    }

    [Fact]
    public void Stale_and_damaged_spares_are_refused_and_removed()
    {
        var store = new SpareCertificates(_directory);
        using (var certificate = PluginCertificate.CreateServerCertificate())
        {
            store.Write(0, certificate, DateTimeOffset.UtcNow - SpareCertificates.MaxAge - TimeSpan.FromMinutes(1));
            store.Write(1, certificate, DateTimeOffset.UtcNow);
        }
        var path = Path.Combine(_directory, "spare-1");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]); // a torn key

        Assert.Null(store.TryClaim());
        Assert.Empty(Files());
    }

    [Fact]
    public void A_directory_others_can_read_is_not_used()
    {
        var store = new SpareCertificates(_directory);
        store.Refill();
        File.SetUnixFileMode(_directory, File.GetUnixFileMode(_directory) | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);

        Assert.Null(store.TryClaim());
        File.Delete(Path.Combine(_directory, "spare-0"));
        store.Refill();
        Assert.Equal(["spare-1"], Files()); // nothing written into it either
    }

    [Fact]
    public async Task Racing_starts_never_share_a_spare()
    {
        var store = new SpareCertificates(_directory);
        store.Refill();
        using var go = new ManualResetEventSlim();
        var claims = Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            go.Wait();
            return store.TryClaim();
        })).ToArray();
        go.Set();
        var won = (await Task.WhenAll(claims)).Where(s => s is not null).ToList();

        Assert.Equal(SpareCertificates.Slots, won.Count);
        Assert.Equal(won.Count, won.Select(s => Convert.ToHexString(s!.CertificateDer)).Distinct().Count());
    }

    [Fact]
    public void Abandoned_claims_and_writes_are_cleaned_up_by_the_next_refill()
    {
        Directory.CreateDirectory(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach (var name in new[] { "spare-0.123.claimed", "spare-1.456.writing" })
        {
            var path = Path.Combine(_directory, name);
            File.WriteAllBytes(path, [1, 2, 3]);
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddHours(-1));
        }

        new SpareCertificates(_directory).Refill();

        Assert.Equal(["spare-0", "spare-1"], Files());
    }

    [Theory]
    [InlineData("/cache/x", null, null, "/cache/x")]
    [InlineData("off", "/run/user/0", "/root", null)]
    [InlineData("relative/dir", "/run/user/0", "/root", null)]
    [InlineData(null, "/run/user/1000", "/home/a", "/run/user/1000/kvm-plugin-certs")]
    [InlineData(null, null, "/home/a", "/home/a/.cache/kvm/plugin-certs")]
    [InlineData(null, "not/absolute", null, null)]
    public void Directory_comes_from_the_environment(string? configured, string? runtime, string? home, string? expected)
    {
        var env = new Dictionary<string, string?> { ["KVM_PLUGIN_CERT_CACHE"] = configured, ["XDG_RUNTIME_DIR"] = runtime, ["HOME"] = home };
        Assert.Equal(expected, SpareCertificates.DefaultDirectory(name => env.GetValueOrDefault(name)));
    }

    [Theory]
    [InlineData("3000", true)]
    [InlineData("3004010203", false)]       // says 4 content bytes, has 3
    [InlineData("30020102", true)]
    [InlineData("3002010200", false)]       // trailing byte
    [InlineData("3181" + "00", false)]      // wrong tag
    [InlineData("3080", false)]             // indefinite length is not DER
    [InlineData("30", false)]
    public void Der_sequence_check(string hex, bool whole)
    {
        Assert.Equal(whole, SpareCertificates.IsOneDerSequence(Convert.FromHexString(hex)));
    }

    [Fact]
    public void Long_form_der_lengths_are_read()
    {
        var body = new byte[300];
        var der = new byte[] { 0x30, 0x82, 0x01, 0x2C }.Concat(body).ToArray();
        Assert.True(SpareCertificates.IsOneDerSequence(der));
        Assert.False(SpareCertificates.IsOneDerSequence(der[..^1]));
    }

    [Fact]
    public void Pem_blocks_are_read_by_hand_like_the_framework_reads_them()
    {
        using var a = Clients.CreateClientCertificate("a");
        using var b = Clients.CreateClientCertificate("b");
        using var key = ECDsa.Create();
        var pem = Clients.ToPem(a).Replace("\n", "\r\n", StringComparison.Ordinal) + key.ExportPkcs8PrivateKeyPem() + "\n" + Clients.ToPem(b);

        var parsed = PluginCertificate.ParsePemCertificates(pem);

        Assert.Equal(2, parsed.Count);
        Assert.Equal(a.RawData, parsed[0]);
        Assert.Equal(b.RawData, parsed[1]);
        Assert.Empty(PluginCertificate.ParsePemCertificates("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"));
    }

    [Fact]
    public async Task A_plugin_start_uses_a_spare_for_its_handshake_and_tls_and_leaves_new_ones()
    {
        using var client = Clients.CreateClientCertificate();
        var settings = new GoPluginSettings
        {
            MagicCookie = GoPluginSettings.MagicCookieValue,
            ProtocolVersions = "6",
            ClientCertificatePem = Clients.ToPem(client),
            SpareCertificateDirectory = _directory,
        };

        // No spares yet: the first start makes its own certificate, then leaves spares for the next.
        string firstLine;
        await using (var first = await GoPluginServer.StartAsync(settings, (_, _) => { }))
        {
            firstLine = first.HandshakeLine;
            first.AfterHandshakeLine();
            await CheckHealthAsync(first, client);
            await WaitForAsync(() => Files().Length == SpareCertificates.Slots);
        }
        var spares = Directory.GetFiles(_directory).Select(f => Convert.ToHexString(File.ReadAllBytes(f))).ToList();

        await using var second = await GoPluginServer.StartAsync(settings, (_, _) => { });
        var der = GrpcWire.FromBase64(second.HandshakeLine.Split('|')[5]);
        Assert.Contains(spares, s => s.Contains(Convert.ToHexString(der), StringComparison.Ordinal));
        Assert.NotEqual(firstLine.Split('|')[5], second.HandshakeLine.Split('|')[5]);
        Assert.Single(Files()); // the other spare is still there for a parallel start

        second.AfterHandshakeLine();
        await CheckHealthAsync(second, client); // TLS with the spare's key, pinned by its DER
        await WaitForAsync(() => Files().Length == SpareCertificates.Slots);
        var refilled = Directory.GetFiles(_directory).Select(f => Convert.ToHexString(File.ReadAllBytes(f))).ToList();
        Assert.DoesNotContain(refilled, s => s.Contains(Convert.ToHexString(der), StringComparison.Ordinal));
    }

    private static async Task CheckHealthAsync(GoPluginServer plugin, X509Certificate2 client)
    {
        var endPoint = new UnixDomainSocketEndPoint(plugin.Address);
        using var grpc = new GrpcClient(Clients.CreateInvoker(endPoint, plugin.ServerCertificate, client), Clients.BaseUri(endPoint, tls: true));
        var health = await grpc.UnaryAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest(), HealthCheckResponse.Parser);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), "the spares were not refilled");
            await Task.Delay(20);
        }
    }
}
