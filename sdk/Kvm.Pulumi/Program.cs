using Kvm.Protocol.Pulumi;
using Kvm.Pulumi.Provider;

namespace Kvm.Pulumi;

/// <summary>
/// pulumi-resource-kvm: started by the Pulumi engine with its own address as the argument;
/// prints only the port it listens on, serves pulumirpc.ResourceProvider over h2c on loopback,
/// and exits cleanly on SIGINT/SIGTERM (the engine's shutdown signal to the process group).
/// </summary>
internal static class Program
{
    private static Task<int> Main(string[] args) =>
        PulumiPluginServer.RunAsync(args, (router, server) =>
        {
            var log = new EngineLog(() => server.Engine, server.AttachEngine);
            new ResourceProviderService(AgentBackend.Create, log).Register(router);
        });
}
