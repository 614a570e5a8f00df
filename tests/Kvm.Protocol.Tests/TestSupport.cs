using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kvm.Protocol.Grpc;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Kvm.Protocol.Tests;

/// <summary>A real Kestrel server on a unix socket (or loopback) plus HTTP/2 clients for it.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly string _directory;

    private TestServer(GrpcServer server, string directory)
    {
        Server = server;
        _directory = directory;
    }

    public GrpcServer Server { get; }

    public static async Task<TestServer> StartAsync(GrpcRouter router, bool tcp = false)
    {
        var directory = Directory.CreateTempSubdirectory("kvm-proto-test-").FullName;
        EndPoint endPoint = tcp ? new IPEndPoint(IPAddress.Loopback, 0) : new UnixDomainSocketEndPoint(Path.Combine(directory, "s.sock"));
        var server = await GrpcServer.StartAsync(router, new GrpcServerOptions { EndPoint = endPoint });
        return new TestServer(server, directory);
    }

    public HttpClient CreateInvoker() => Clients.CreateInvoker(Server.BoundEndPoint, null);

    public GrpcClient CreateClient() => new(CreateInvoker(), Clients.BaseUri(Server.BoundEndPoint, tls: false));

    public Uri Uri(string method) => new(Clients.BaseUri(Server.BoundEndPoint, tls: false), method);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}

internal static class Clients
{
    public static Uri BaseUri(EndPoint endPoint, bool tls) => endPoint switch
    {
        IPEndPoint ip => new Uri($"{(tls ? "https" : "http")}://{ip}"),
        // The host part is only the :authority header; the socket comes from ConnectCallback.
        _ => new Uri(tls ? "https://localhost" : "http://unused"),
    };

    /// <summary>HTTP/2 over TCP or a unix socket, plaintext or TLS with an optional client certificate.</summary>
    public static HttpClient CreateInvoker(EndPoint endPoint, X509Certificate2? serverCertificate, X509Certificate2? clientCertificate = null)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, EnableMultipleHttp2Connections = false };
        if (endPoint is UnixDomainSocketEndPoint)
        {
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }
        if (serverCertificate is not null)
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                // Exactly what go-plugin does: the handshake's certificate is the only trusted root.
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetRawCertData().AsSpan().SequenceEqual(serverCertificate.RawData),
                ClientCertificates = clientCertificate is null ? null : [clientCertificate],
                LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
            };
        }
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>A self-signed client certificate like the one go-plugin's host generates.</summary>
    public static X509Certificate2 CreateClientCertificate(string name = "localhost")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2"), new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-1), now.AddHours(1));
    }

    public static string ToPem(X509Certificate2 certificate) => certificate.ExportCertificatePem();
}

/// <summary>Request content written in pieces with a flush after each, so frames arrive split.</summary>
internal sealed class ChunkedContent(byte[] data, int chunkSize, TimeSpan pause) : HttpContent
{
    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        for (var offset = 0; offset < data.Length; offset += chunkSize)
        {
            await stream.WriteAsync(data.AsMemory(offset, Math.Min(chunkSize, data.Length - offset)));
            await stream.FlushAsync();
            if (pause > TimeSpan.Zero)
            {
                await Task.Delay(pause);
            }
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
