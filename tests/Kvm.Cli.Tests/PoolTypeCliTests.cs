using Kvm.Cli.Tests.Support;

namespace Kvm.Cli.Tests;

/// <summary>kvmctl pools create with the lvm-thin and nfs types, against a real agent on this machine's kernel.</summary>
public sealed class PoolTypeCliTests : IAsyncLifetime
{
    private CliAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await CliAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    [Fact]
    public async Task HostPrintsThePoolTypesAndWhatIsMissingForTheOthers()
    {
        var host = await _agent.Client.GetHostAsync();
        var result = await _agent.RunAsync("host");
        Assert.Equal(0, result.ExitCode);
        var flat = string.Join(' ', result.Stdout.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("pool types: " + string.Join(", ", host.StoragePoolTypes!), flat, StringComparison.Ordinal);
        foreach (var (type, missing) in host.StoragePoolTypesUnavailable!)
            Assert.Contains($"not {type}: {missing}", flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingTypeSettingNamesItsFlagAndNothingIsSent()
    {
        var result = await _agent.RunAsync("pools", "create", "thin", "--type", "lvm-thin", "--volume-group", "vg0");
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("--thin-pool: is required for a pool of type \"lvm-thin\".", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("nothing was sent to the agent", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ATypeTheHostCannotServeIsRefusedWithTheAgentsReason()
    {
        var host = await _agent.Client.GetHostAsync();
        var result = await _agent.RunAsync("pools", "create", "thin", "--type", "lvm-thin", "--volume-group", "kvmcli-no-such-vg", "--thin-pool", "data");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(host.StoragePoolTypesUnavailable!.GetValueOrDefault("lvm-thin") ?? "volume group \"kvmcli-no-such-vg\" does not exist", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("thin", (await _agent.Client.ListStoragePoolsAsync()).Select(p => p.Name));
    }
}
