using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kvm.Agent.Http;

namespace Kvm.Agent.Tests.Host;

/// <summary>The command-line contract of kvm-agent (DESIGN §3), the token and TLS.</summary>
public sealed class AgentOptionsTests
{
    private static string? NoEnvironment(string name) => null;

    [Fact]
    public void DefaultsFollowTheDesign()
    {
        var options = AgentOptions.Parse([], NoEnvironment);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 8680), options.Listen);
        Assert.Equal("/var/lib/kvm-agent", options.DataDir);
        Assert.Equal("/run/kvm-agent", options.RunDir);
        Assert.Equal("auto", options.Accel);
        Assert.Null(options.Token);
        Assert.False(options.AllowHostNat); // NAT in the host's namespace is refused unless the host's owner says so
        Assert.True(AgentOptions.Parse(["--allow-host-nat"], NoEnvironment).AllowHostNat);
    }

    [Fact]
    public void EveryOptionIsParsed()
    {
        var options = AgentOptions.Parse(["--listen", "0.0.0.0:9000", "--data-dir", "/tmp/d", "--run-dir", "/tmp/r", "--accel", "tcg",
            "--token-file", "/tmp/t", "--tls-cert", "/tmp/c.pem", "--tls-key", "/tmp/k.pem"], n => n == "KVM_AGENT_TOKEN" ? "env-token" : null);
        Assert.Equal(new IPEndPoint(IPAddress.Any, 9000), options.Listen);
        Assert.Equal(("/tmp/d", "/tmp/r", "tcg", "/tmp/t", "env-token"), (options.DataDir, options.RunDir, options.Accel, options.TokenFile, options.Token));
        Assert.Equal(("/tmp/c.pem", "/tmp/k.pem"), (options.TlsCert, options.TlsKey));
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 8680), AgentOptions.ParseEndpoint("[::1]:8680"));
        Assert.Equal("/run/kvm-agent/agent.sock", AgentOptions.ParseEndpoint("unix:/run/kvm-agent/agent.sock").ToString());
        Assert.Equal("/run/kvm-agent/agent.sock", AgentOptions.ParseEndpoint("unix:///run/kvm-agent/agent.sock").ToString());
    }

    [Theory]
    [InlineData("--accel", "xen")]
    [InlineData("--listen", "nonsense")]
    [InlineData("--listen", "unix:relative.sock")]
    [InlineData("--listen", "unix:/run/kvm-agent/")]
    [InlineData("--bogus", "x")]
    [InlineData("--tls-cert", "/only/the/cert.pem")]
    [InlineData("--run-dir", "/a/run/dir/so/long/that/the/qmp/socket/paths/under/it/would/exceed/the/hundred/and/eight/byte/limit")]
    public void BadOptionsAreRefusedWithAMessage(string name, string value) =>
        Assert.Throws<ArgumentException>(() => AgentOptions.Parse([name, value], NoEnvironment));

    [Fact]
    public void WithoutATokenOneIsGeneratedPrivatelyAndReused()
    {
        var dir = Directory.CreateTempSubdirectory("kvmt-").FullName;
        try
        {
            var options = new AgentOptions { DataDir = dir };
            var (token, file) = BearerToken.Resolve(options);
            Assert.Equal(Path.Combine(dir, "token"), file);
            Assert.Equal(64, token.Length);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file!));
            Assert.Equal(token, BearerToken.Resolve(options).Token);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task TheAgentServesHttpsWithTheConfiguredCertificate()
    {
        var dir = Directory.CreateTempSubdirectory("kvmt-").FullName;
        try
        {
            using var key = RSA.Create(2048);
            var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            await File.WriteAllTextAsync(Path.Combine(dir, "cert.pem"), cert.ExportCertificatePem());
            await File.WriteAllTextAsync(Path.Combine(dir, "key.pem"), key.ExportPkcs8PrivateKeyPem());
            var options = new AgentOptions
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                DataDir = Path.Combine(dir, "data"),
                RunDir = Path.Combine(dir, "run"),
                Token = "tls-token",
                TlsCert = Path.Combine(dir, "cert.pem"),
                TlsKey = Path.Combine(dir, "key.pem"),
                LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning,
            };
            await using var agent = await AgentHost.StartAsync(options);
            Assert.Equal("https", agent.BaseAddress.Scheme);
            var thumbprint = cert.Thumbprint;
            using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, c, _, _) => c?.Thumbprint == thumbprint };
            using var client = Kvm.Client.KvmClient.Create(agent.BaseAddress, "tls-token", handler);
            Assert.True(await client.IsHealthyAsync());
            Assert.Empty(await client.ListVmsAsync());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task TheAgentServesItsApiOnAUnixSocketOnlyItsOwnerCanOpen()
    {
        var dir = Directory.CreateTempSubdirectory("kvmt-").FullName;
        try
        {
            var socket = Path.Combine(dir, "agent.sock");
            // A stale socket from an agent killed with -9 is reclaimed.
            using (var stale = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified))
            {
                stale.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
                // .NET unlinks a socket it bound when it is disposed; a renamed one survives, as after kill -9.
                File.Move(socket, socket + ".keep");
            }
            File.Move(socket + ".keep", socket);
            Assert.True(File.Exists(socket));
            var options = new AgentOptions
            {
                Listen = new System.Net.Sockets.UnixDomainSocketEndPoint(socket),
                DataDir = Path.Combine(dir, "data"),
                RunDir = Path.Combine(dir, "run"),
                Token = "unix-token",
                LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning,
            };
            await using (var agent = await AgentHost.StartAsync(options))
            {
                Assert.Equal("unix:///" + socket.TrimStart('/'), agent.BaseAddress.AbsoluteUri);
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(socket));
                using var client = Kvm.Client.KvmClient.Create(agent.BaseAddress, "unix-token");
                Assert.True(await client.IsHealthyAsync());
                Assert.Empty(await client.ListVmsAsync());
                using var wrongToken = Kvm.Client.KvmClient.Create(agent.BaseAddress, "wrong");
                await Assert.ThrowsAsync<Kvm.Client.KvmApiException>(() => wrongToken.ListVmsAsync());

                // A second agent on the same live socket is refused and leaves the first one serving.
                var second = Assert.Throws<ArgumentException>(() => UnixListener.ClaimSocketPath(socket));
                Assert.Contains("another process is listening", second.Message, StringComparison.Ordinal);
                Assert.True(await client.IsHealthyAsync());
            }
            // Anything that is not a socket is never deleted.
            var file = Path.Combine(dir, "not-a-socket");
            await File.WriteAllTextAsync(file, "keep me");
            Assert.Throws<ArgumentException>(() => UnixListener.ClaimSocketPath(file));
            Assert.Equal("keep me", await File.ReadAllTextAsync(file));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
