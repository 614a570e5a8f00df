using Kvm.Protocol.GoPlugin;
using Kvm.Protocol.Pulumi;
using Kvm.Protocol.Pulumirpc;
using Kvm.Protocol.Tfplugin6;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace Kvm.Protocol.Tests;

/// <summary>The plugin processes the end-to-end tests launch (see <see cref="Program"/>).</summary>
internal static class PluginFixtures
{
    public static Task<int> RunGoPluginAsync() =>
        GoPluginServer.RunAsync("terraform-provider-test", (router, plugin) =>
        {
            router.Unary(Tfplugin6Methods.GetProviderSchema, GetProviderSchema.Types.Request.Parser, (_, _) =>
                Task.FromResult(new GetProviderSchema.Types.Response { Provider = new Schema { Block = new Schema.Types.Block() } }));
        });

    public static Task<int> RunPulumiAsync(string[] args) =>
        PulumiPluginServer.RunAsync(args, (router, plugin) =>
        {
            router.Unary(ResourceProviderMethods.GetPluginInfo, Empty.Parser, async (_, call) =>
            {
                // Proves the engine address from the command line reaches the provider.
                if (plugin.Engine is { } engine)
                {
                    await engine.LogAsync(LogSeverity.Info, "hello from the plugin", cancellationToken: call.CancellationToken);
                }
                return new PluginInfo { Version = "0.1.0" };
            });
        });
}
