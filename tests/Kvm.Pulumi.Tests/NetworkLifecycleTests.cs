using Google.Protobuf.WellKnownTypes;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Tests.Shared;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// kvm:index/network:Network through the engine harness and the real plugin, against a real kvm-agent
/// inside a network namespace of its own (reached over its unix socket): the bridge, its address and
/// MTU, and the running VM's tap live only in that namespace.
/// </summary>
public sealed class NetworkLifecycleTests : IAsyncLifetime
{
    private const string NetworkToken = "kvm:index/network:Network";
    private const string VmToken = "kvm:index/vm:Vm";

    private AgentProcess _agent = null!;

    public async Task InitializeAsync() => _agent = await AgentProcess.StartInNamespaceAsync(Repo.Root);

    public Task DisposeAsync()
    {
        _agent.Dispose();
        return Task.CompletedTask;
    }

    private string Links() => AgentProcess.Ip("-n", _agent.Netns!, "-o", "link", "show");

    private string Addresses(string bridge) => AgentProcess.Ip("-n", _agent.Netns!, "-o", "addr", "show", "dev", bridge);

    [Fact]
    public async Task ABridgeAndARunningVmOnItAreCreatedUpdatedReplacedImportedAndDestroyedInTheNamespace()
    {
        var kernel = Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Repo.PathOf(".work", "guest", "vmlinuz");
        Assert.True(File.Exists(kernel), $"the test guest kernel is missing ({kernel}); set KVM_TEST_KERNEL");
        var suffix = Guid.NewGuid().ToString("N")[..6];
        var bridge = "kpb" + suffix;
        var address = "192.168.81.1/24";
        var mtu = 1500;
        Goal Network() => new(NetworkToken, "lab", _ => StructCodecTests.Parse($$"""{"name":"{{bridge}}","address":"{{address}}","mtu":{{mtu}} }"""));
        var vm = new Goal(VmToken, "node", outputs =>
        {
            var inputs = StructCodecTests.Parse($$"""
                {"name":"node-{{suffix}}","kernel":"{{kernel}}","memory":{"sizeMib":128},"updatePolicy":{"shutdownTimeoutSeconds":3},
                 "networkInterfaces":{"net0":{"model":"virtio"} } }
                """);
            inputs.Fields["networkInterfaces"].StructValue.Fields["net0"].StructValue.Fields["bridge"] = outputs("lab", "name");
            return inputs;
        });

        await using var session = await EngineSession.StartAsync();
        await session.ConfigureAsync(EngineSession.Config(_agent.Endpoint, _agent.Token));
        var deployment = new Deployment(session);

        Assert.Equal(["create", "create"], (await deployment.PreviewAsync([Network(), vm])).Select(s => s.Op));
        Assert.DoesNotContain(bridge, Links(), StringComparison.Ordinal);

        await deployment.UpAsync([Network(), vm]);
        Assert.Equal(bridge, deployment["lab"].Id);
        Assert.True(deployment["lab"].Outputs.Fields["owned"].BoolValue);
        var vmId = deployment["node"].Id;
        var tap = $"tap{vmId}i0";
        var links = Links();
        Assert.Contains(bridge, links, StringComparison.Ordinal);
        Assert.Contains($"{tap}", links, StringComparison.Ordinal);
        Assert.Contains($"master {bridge}", links.Split('\n').Single(l => l.Contains(tap, StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains(address, Addresses(bridge), StringComparison.Ordinal);
        var hostLinks = AgentProcess.Ip("-o", "link", "show");
        Assert.DoesNotContain(bridge, hostLinks, StringComparison.Ordinal);
        Assert.DoesNotContain(tap, hostLinks, StringComparison.Ordinal);
        Assert.Equal(["same", "same"], (await deployment.PreviewAsync([Network(), vm])).Select(s => s.Op));

        // In place: a new address and MTU on the live bridge.
        address = "192.168.82.1/24";
        mtu = 1400;
        Assert.Equal(["update", "same"], (await deployment.UpAsync([Network(), vm])).Select(s => s.Op));
        Assert.Contains(address, Addresses(bridge), StringComparison.Ordinal);
        Assert.DoesNotContain("192.168.81.1/24", Addresses(bridge), StringComparison.Ordinal);
        Assert.Contains("mtu 1400", Links().Split('\n').Single(l => l.Contains($": {bridge}:", StringComparison.Ordinal)), StringComparison.Ordinal);

        // Import into a fresh stack by name: no diff.
        var imported = new Deployment(session);
        await imported.UpAsync([Network() with { ImportId = bridge }]);
        Assert.Equal(["Read lab", "Check lab", "Diff lab"], imported.Calls);

        // A new name replaces the bridge (created first); the VM follows it; the old bridge goes last.
        var old = bridge;
        bridge = "kpc" + suffix;
        var steps = await deployment.UpAsync([Network(), vm]);
        Assert.Equal(["replace", "update", "delete-replaced"], steps.Select(s => s.Op));
        links = Links();
        Assert.DoesNotContain(old, links, StringComparison.Ordinal);
        Assert.Contains($"master {bridge}", links.Split('\n').Single(l => l.Contains(tap, StringComparison.Ordinal)), StringComparison.Ordinal);

        await deployment.DestroyAsync();
        Assert.Equal(["node", "lab"], deployment.Steps.Select(s => s.Resource));
        links = Links();
        Assert.DoesNotContain(bridge, links, StringComparison.Ordinal);
        Assert.DoesNotContain(tap, links, StringComparison.Ordinal);
        Assert.Empty(await _agent.Client.ListVmsAsync());
    }
}
