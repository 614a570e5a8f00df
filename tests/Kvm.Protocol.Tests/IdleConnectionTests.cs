using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;

namespace Kvm.Protocol.Tests;

/// <summary>
/// Kestrel checks connection timeouts on a 1 s heartbeat. A keep-alive deadline that had
/// overflowed into the past made it close every connection without a stream (a fresh one, or
/// one between calls) with GOAWAY(NO_ERROR) at the next tick, so a first call that was slower
/// than that tick (a loaded machine, a TLS handshake, JIT) failed on the client.
/// </summary>
public sealed class IdleConnectionTests
{
    // Two heartbeats and some slack: the broken deadline fired on the first one.
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(2.5);

    [Fact]
    public async Task Fresh_connection_is_not_closed_while_the_client_has_not_sent_a_request()
    {
        await using var server = await TestServer.StartAsync(new GrpcRouter(), tcp: true);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.Server.BoundEndPoint);
        // Client connection preface plus an empty SETTINGS frame, then nothing.
        await socket.SendAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\u0004\0\0\0\0\0"u8.ToArray());

        var frameTypes = new List<byte>();
        var received = new List<byte>();
        var buffer = new byte[16384];
        using var idle = new CancellationTokenSource(Idle);
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, idle.Token);
                Assert.True(n > 0, $"server closed the connection after frames [{string.Join(',', frameTypes)}]");
                received.AddRange(buffer.AsSpan(0, n));
                while (received.Count >= 9)
                {
                    var length = (received[0] << 16) | (received[1] << 8) | received[2];
                    if (received.Count < 9 + length)
                    {
                        break;
                    }
                    frameTypes.Add(received[3]);
                    received.RemoveRange(0, 9 + length);
                }
            }
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested)
        {
            // Stayed open for the whole idle period.
        }

        const byte settings = 0x4, goAway = 0x7;
        Assert.Contains(settings, frameTypes);
        Assert.DoesNotContain(goAway, frameTypes);
    }

    [Fact]
    public async Task Connection_stays_open_between_calls()
    {
        const string method = "/test.Idle/Call";
        await using var server = await TestServer.StartAsync(
            new GrpcRouter().Unary(method, Empty.Parser, (request, _) => Task.FromResult(request)));
        var connections = 0;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (_, cancellationToken) =>
            {
                Interlocked.Increment(ref connections);
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(server.Server.BoundEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var client = new GrpcClient(new HttpClient(handler), Clients.BaseUri(server.Server.BoundEndPoint, tls: false));

        await client.UnaryAsync(method, new Empty(), Empty.Parser);
        await Task.Delay(Idle);
        await client.UnaryAsync(method, new Empty(), Empty.Parser);

        Assert.Equal(1, connections);
    }
}
