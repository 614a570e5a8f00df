using Kvm.Protocol.Grpc;
using Kvm.Pulumi.Tests.Harness;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// kvm:index/storagePool:StoragePool types through the real plugin and a real kvm-agent: each type's settings are checked
/// at Check with camelCase property paths, and a pool of a type the host cannot serve (on this machine lvm-thin: the
/// kernel has no device-mapper) fails at Create as a refusal (nothing happened) carrying the agent's reason.
/// </summary>
public sealed class StoragePoolTypeTests(AgentLifecycleTests.Agent agent) : IClassFixture<AgentLifecycleTests.Agent>, IAsyncLifetime
{
    private const string PoolToken = "kvm:index/storagePool:StoragePool";
    private EngineSession _session = null!;

    public async Task InitializeAsync()
    {
        _session = await EngineSession.StartAsync();
        await _session.ConfigureAsync(EngineSession.Config(agent.Process.Endpoint, agent.Process.Token));
    }

    public async Task DisposeAsync() => await _session.DisposeAsync();

    [Fact]
    public async Task PoolTypeSettingsAreCheckedAndAnUnservableTypeIsRefusedWithTheAgentsReason()
    {
        var missing = await _session.CheckAsync(PoolToken, "thin", null, StructCodecTests.Parse("""{"name":"thin","type":"lvm-thin","volumeGroup":"vg0"}"""));
        var failure = Assert.Single(missing.Failures);
        Assert.Equal(("thinPool", "is required for a pool of type \"lvm-thin\"."), (failure.Property, failure.Reason));
        var wrong = await _session.CheckAsync(PoolToken, "nas", null, StructCodecTests.Parse("""{"name":"nas","type":"nfs","server":"nas","export":"/srv","thinPool":"data"}"""));
        Assert.Equal("thinPool", Assert.Single(wrong.Failures).Property);

        var check = await _session.CheckAsync(PoolToken, "thin", null,
            StructCodecTests.Parse("""{"name":"thin","type":"lvm-thin","volumeGroup":"kvmpu-no-such-vg","thinPool":"data"}"""));
        Assert.Empty(check.Failures);
        var host = await agent.Process.Client.GetHostAsync();
        var refused = await Assert.ThrowsAsync<GrpcException>(() => _session.CreateAsync(PoolToken, "thin", check.Inputs, preview: false));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        var reason = host.StoragePoolTypesUnavailable!.GetValueOrDefault("lvm-thin") is { } unavailable
            ? $"type: this host cannot serve \"lvm-thin\" pools: {unavailable}."
            : "volumeGroup: volume group \"kvmpu-no-such-vg\" does not exist";
        Assert.Contains(reason, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(await agent.Process.Client.ListStoragePoolsAsync(), p => p.Name == "thin");
    }
}
