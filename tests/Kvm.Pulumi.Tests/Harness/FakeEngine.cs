using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumirpc;

namespace Kvm.Pulumi.Tests.Harness;

/// <summary>The engine's side of the conversation a provider calls back on: pulumirpc.Engine/Log on loopback.</summary>
internal sealed class FakeEngine : IAsyncDisposable
{
    private readonly GrpcServer _server;

    private FakeEngine(GrpcServer server, ConcurrentQueue<LogRequest> messages)
    {
        _server = server;
        Messages = messages;
    }

    /// <summary>127.0.0.1:port, as the engine passes it to plugins.</summary>
    public string Address => "127.0.0.1:" + ((IPEndPoint)_server.BoundEndPoint).Port;

    public ConcurrentQueue<LogRequest> Messages { get; }

    public static async Task<FakeEngine> StartAsync()
    {
        var messages = new ConcurrentQueue<LogRequest>();
        var router = new GrpcRouter().Unary("/pulumirpc.Engine/Log", LogRequest.Parser, (request, _) =>
        {
            messages.Enqueue(request);
            return Task.FromResult(new Empty());
        });
        var server = await GrpcServer.StartAsync(router, new GrpcServerOptions { EndPoint = new IPEndPoint(IPAddress.Loopback, 0) });
        return new FakeEngine(server, messages);
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
