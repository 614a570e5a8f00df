using System.Net;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumi;
using Kvm.Protocol.Pulumirpc;

namespace Kvm.Protocol.Tests;

public sealed class PulumiPluginServerTests
{
    [Fact]
    public async Task Serves_h2c_on_ipv4_loopback_and_attaches_the_engine_later()
    {
        var logs = new List<string>();
        var engineRouter = new GrpcRouter().Unary(PulumiEngineClient.LogMethod, LogRequest.Parser, (request, _) =>
        {
            lock (logs)
            {
                logs.Add($"{request.Severity}:{request.Urn}:{request.Message}");
            }
            return Task.FromResult(new Empty());
        });
        await using var engine = await GrpcServer.StartAsync(engineRouter, new GrpcServerOptions { EndPoint = new IPEndPoint(IPAddress.Loopback, 0) });

        await using var plugin = await PulumiPluginServer.StartAsync(PulumiPluginArguments.Parse([]), (router, p) =>
        {
            router.Unary(ResourceProviderMethods.Attach, PluginAttach.Parser, (request, _) =>
            {
                p.AttachEngine(request.Address);
                return Task.FromResult(new Empty());
            });
            router.Unary(ResourceProviderMethods.GetPluginInfo, Empty.Parser, async (_, call) =>
            {
                await p.Engine!.LogAsync(LogSeverity.Warning, "careful", "urn:pulumi:s::p::kvm:index/vm:Vm::a", cancellationToken: call.CancellationToken);
                return new PluginInfo { Version = "1.2.3" };
            });
        });
        using var client = GrpcClient.CreateInsecure($"127.0.0.1:{plugin.Port}");

        Assert.Null(plugin.Engine);
        await client.UnaryAsync(ResourceProviderMethods.Attach, new PluginAttach { Address = engine.BoundEndPoint.ToString()! }, Empty.Parser);
        var info = await client.UnaryAsync(ResourceProviderMethods.GetPluginInfo, new Empty(), PluginInfo.Parser);

        Assert.InRange(plugin.Port, 1, 65535);
        Assert.Equal("1.2.3", info.Version);
        Assert.Equal(["Warning:urn:pulumi:s::p::kvm:index/vm:Vm::a:careful"], logs);
    }

    [Fact]
    public async Task Engine_client_reports_an_unreachable_engine_as_unavailable()
    {
        int port;
        using (var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        using var engine = new PulumiEngineClient($"127.0.0.1:{port}");

        var e = await Assert.ThrowsAsync<GrpcException>(() => engine.LogAsync(LogSeverity.Info, "x"));

        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
    }
}
