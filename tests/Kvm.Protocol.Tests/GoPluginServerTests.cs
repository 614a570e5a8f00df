using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Kvm.Protocol.GoPlugin;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Health;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace Kvm.Protocol.Tests;

public sealed partial class GoPluginServerTests
{
    private static GoPluginSettings Settings(X509Certificate2? client, string versions = "5,6", bool tcp = false, string? socketDir = null) => new()
    {
        MagicCookie = GoPluginSettings.MagicCookieValue,
        ProtocolVersions = versions,
        ClientCertificatePem = client is null ? null : Clients.ToPem(client),
        UseTcp = tcp,
        UnixSocketDirectory = socketDir,
    };

    private static readonly Action<GrpcRouter, GoPluginServer> NoServices = (_, _) => { };

    [GeneratedRegex(@"^1\|6\|unix\|(/[^|]+/plugin\.sock)\|grpc\|([A-Za-z0-9+/]{100,})$")]
    private static partial Regex UnixTlsLine();

    [Fact]
    public async Task Handshake_line_carries_socket_path_and_unpadded_certificate()
    {
        using var client = Clients.CreateClientCertificate();
        // Several starts: with padding, two DER lengths in three would show '='.
        for (var i = 0; i < 4; i++)
        {
            await using var plugin = await GoPluginServer.StartAsync(Settings(client), NoServices);

            var match = UnixTlsLine().Match(plugin.HandshakeLine);
            Assert.True(match.Success, plugin.HandshakeLine);
            Assert.Equal(plugin.Address, match.Groups[1].Value);
            Assert.True(File.Exists(plugin.Address) || Directory.Exists(Path.GetDirectoryName(plugin.Address)));
            Assert.Equal(plugin.ServerCertificate!.RawData, GrpcWire.FromBase64(match.Groups[2].Value));
        }
    }

    [Fact]
    public async Task Server_certificate_is_what_go_plugin_clients_accept()
    {
        using var client = Clients.CreateClientCertificate();
        await using var plugin = await GoPluginServer.StartAsync(Settings(client), NoServices);
        var fields = plugin.HandshakeLine.Split('|');
        using var cert = X509CertificateLoader.LoadCertificate(GrpcWire.FromBase64(fields[5]));

        using var key = cert.GetECDsaPublicKey();
        Assert.NotNull(key);
        Assert.Equal(256, key.KeySize);
        Assert.Equal(ECCurve.NamedCurves.nistP256.Oid.Value, key.ExportParameters(false).Curve.Oid.Value);

        var san = Assert.Single(cert.Extensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.Contains("localhost", san.EnumerateDnsNames());
        Assert.Contains(System.Net.IPAddress.Loopback, san.EnumerateIPAddresses());

        var eku = Assert.Single(cert.Extensions.OfType<X509EnhancedKeyUsageExtension>());
        var usages = eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).ToList();
        Assert.Contains("1.3.6.1.5.5.7.3.1", usages);
        Assert.Contains("1.3.6.1.5.5.7.3.2", usages);

        Assert.True(SerialFromDer(cert.RawData).Sign > 0);
        Assert.True(cert.NotBefore.ToUniversalTime() < DateTime.UtcNow.AddSeconds(-30));
        Assert.True(cert.NotAfter.ToUniversalTime() > DateTime.UtcNow.AddYears(1));
        Assert.Equal(cert.SubjectName.RawData, cert.IssuerName.RawData);
    }

    [Fact]
    public void Certificate_serials_are_always_positive()
    {
        // A sign bug shows up about half the time, so look at many.
        for (var i = 0; i < 64; i++)
        {
            using var cert = PluginCertificate.CreateServerCertificate();
            Assert.True(SerialFromDer(cert.RawData).Sign > 0);
        }
    }

    private static System.Numerics.BigInteger SerialFromDer(byte[] der)
    {
        var tbs = new AsnReader(der, AsnEncodingRules.DER).ReadSequence().ReadSequence();
        if (tbs.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
        {
            tbs.ReadEncodedValue();
        }
        return tbs.ReadInteger();
    }

    [Fact]
    public async Task Pinned_client_certificate_can_call_over_mtls()
    {
        using var client = Clients.CreateClientCertificate();
        await using var plugin = await GoPluginServer.StartAsync(Settings(client), NoServices);
        var endPoint = new System.Net.Sockets.UnixDomainSocketEndPoint(plugin.Address);
        using var grpc = new GrpcClient(Clients.CreateInvoker(endPoint, plugin.ServerCertificate, client), Clients.BaseUri(endPoint, tls: true));

        var empty = await grpc.UnaryAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest(), HealthCheckResponse.Parser);
        var named = await grpc.UnaryAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest { Service = "plugin" }, HealthCheckResponse.Parser);
        var other = await Assert.ThrowsAsync<GrpcException>(() =>
            grpc.UnaryAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest { Service = "other" }, HealthCheckResponse.Parser));

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, empty.Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, named.Status);
        Assert.Equal(StatusCode.NotFound, other.StatusCode);
    }

    [Fact]
    public async Task Other_client_certificates_and_no_certificate_are_refused()
    {
        using var pinned = Clients.CreateClientCertificate();
        using var stranger = Clients.CreateClientCertificate();
        await using var plugin = await GoPluginServer.StartAsync(Settings(pinned), NoServices);
        var endPoint = new System.Net.Sockets.UnixDomainSocketEndPoint(plugin.Address);

        foreach (var presented in new[] { stranger, null })
        {
            using var grpc = new GrpcClient(Clients.CreateInvoker(endPoint, plugin.ServerCertificate, presented), Clients.BaseUri(endPoint, tls: true));
            var e = await Assert.ThrowsAsync<GrpcException>(() =>
                grpc.UnaryAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest(), HealthCheckResponse.Parser));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        }
    }

    [Fact]
    public async Task Without_a_client_certificate_the_plugin_serves_plaintext()
    {
        await using var plugin = await GoPluginServer.StartAsync(Settings(null), NoServices);
        var endPoint = new System.Net.Sockets.UnixDomainSocketEndPoint(plugin.Address);
        using var grpc = new GrpcClient(Clients.CreateInvoker(endPoint, null), Clients.BaseUri(endPoint, tls: false));

        var health = await grpc.UnaryAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest(), HealthCheckResponse.Parser);

        Assert.EndsWith("|grpc|", plugin.HandshakeLine, StringComparison.Ordinal);
        Assert.Null(plugin.ServerCertificate);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task Tcp_mode_listens_on_loopback()
    {
        using var client = Clients.CreateClientCertificate();
        await using var plugin = await GoPluginServer.StartAsync(Settings(client, tcp: true), NoServices);
        var fields = plugin.HandshakeLine.Split('|');
        var endPoint = System.Net.IPEndPoint.Parse(fields[3]);
        using var grpc = new GrpcClient(Clients.CreateInvoker(endPoint, plugin.ServerCertificate, client), new Uri($"https://localhost:{endPoint.Port}"));

        var health = await grpc.UnaryAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest(), HealthCheckResponse.Parser);

        Assert.Equal("tcp", fields[2]);
        Assert.Equal(System.Net.IPAddress.Loopback, endPoint.Address);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Theory]
    [InlineData(null, "6", "cookie")]
    [InlineData("not-the-cookie", "6", "cookie")]
    [InlineData(GoPluginSettings.MagicCookieValue, "4,5", "protocol 6")]
    public async Task Refuses_to_start_without_cookie_or_protocol_6(string? cookie, string versions, string expected)
    {
        var settings = new GoPluginSettings { MagicCookie = cookie, ProtocolVersions = versions };

        var e = await Assert.ThrowsAsync<GoPluginHandshakeException>(() => GoPluginServer.StartAsync(settings, NoServices));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("6,5")]
    [InlineData(" 5 , 6 ")]
    [InlineData(null)]
    public void Protocol_6_is_found_in_any_order(string? versions) =>
        Assert.True(new GoPluginSettings { ProtocolVersions = versions }.Offers(6));

    [Fact]
    public async Task Socket_lives_in_a_private_directory_that_is_removed_on_dispose()
    {
        var parent = Directory.CreateTempSubdirectory("kvm-proto-parent-").FullName;
        try
        {
            string directory;
            await using (var plugin = await GoPluginServer.StartAsync(Settings(null, socketDir: parent), NoServices))
            {
                directory = Path.GetDirectoryName(plugin.Address)!;
                Assert.Equal(parent, Path.GetDirectoryName(directory));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
                Assert.True(File.Exists(plugin.Address));
            }
            Assert.False(Directory.Exists(directory));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public async Task Shutdown_replies_then_requests_exit_and_ends_side_streams()
    {
        await using var plugin = await GoPluginServer.StartAsync(Settings(null), NoServices);
        var endPoint = new System.Net.Sockets.UnixDomainSocketEndPoint(plugin.Address);
        using var grpc = new GrpcClient(Clients.CreateInvoker(endPoint, null), Clients.BaseUri(endPoint, tls: false));
        using var invoker = Clients.CreateInvoker(endPoint, null);
        var stdio = Task.Run(async () =>
        {
            await foreach (var unused in grpc.ServerStreamingAsync("/plugin.GRPCStdio/StreamStdio", new Empty(), StdioData.Parser))
            {
            }
        });
        // The broker stream's request body never ends, like go-plugin's.
        using var brokerRequest = GrpcClient.CreateRequest(new Uri(Clients.BaseUri(endPoint, false), "/plugin.GRPCBroker/StartStream"),
            new ChunkedContent(GrpcWire.Frame(new ConnInfo { ServiceId = 1 }), 1024, TimeSpan.FromMinutes(5)));
        using var broker = await invoker.SendAsync(brokerRequest, HttpCompletionOption.ResponseHeadersRead, CancellationToken.None);
        Assert.Equal(System.Net.HttpStatusCode.OK, broker.StatusCode);
        await Task.Delay(200);
        Assert.False(stdio.IsCompleted);
        Assert.False(plugin.ShutdownRequested.IsCancellationRequested);

        await grpc.UnaryAsync("/plugin.GRPCController/Shutdown", new GoPlugin.Empty(), GoPlugin.Empty.Parser);
        await plugin.WaitForShutdownAsync().WaitAsync(TimeSpan.FromSeconds(2));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await plugin.DisposeAsync();

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"dispose took {watch.Elapsed}");
        var ended = await Record.ExceptionAsync(() => stdio.WaitAsync(TimeSpan.FromSeconds(2)));
        Assert.IsNotType<TimeoutException>(ended);
    }
}
