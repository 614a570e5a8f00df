using System.Text.Json;
using Kvm.Agent.CloudInit;
using Kvm.Agent.Tests.Storage;
using Kvm.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kvm.Agent.Tests.CloudInit;

/// <summary>Seeds made by the real genisoimage, read back with isoinfo: labels, files, instance-id rules, cleanup.</summary>
public sealed class CloudInitSeedsTests : IAsyncLifetime
{
    private readonly TestCommandRunner _runner = new();
    private TempDir _dir = null!;
    private CloudInitSeeds _seeds = null!;

    public Task InitializeAsync()
    {
        _dir = new TempDir(_runner);
        _seeds = new CloudInitSeeds(new AgentOptions { DataDir = _dir.Sub("data"), RunDir = _dir.Sub("run") }, _runner, NullLogger<CloudInitSeeds>.Instance);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _dir.DisposeAsync();

    private static VmSpec Vm(string cloudInit) => Defaults.Apply(JsonSerializer.Deserialize<VmSpec>(
        $$$"""{"name":"seed-vm","network_interfaces":{"net0":{}},"cloud_init":{{{cloudInit}}}}""", ModelJson.Options)!);

    private async Task<string> IsoInfoAsync(params string[] args)
    {
        var result = await _runner.RunAsync(["isoinfo", .. args], TimeSpan.FromSeconds(30));
        Assert.True(result.Ok, result.StdErr);
        return result.StdOut;
    }

    [Fact]
    public async Task ANoCloudSeedIsAnIsoLabelledCidataWithTheBuiltFiles()
    {
        var spec = Vm("""{"user":{"name":"ops","password":"pw"},"ip_config":{"net0":{"ipv4":{"address":"dhcp"}}}}""");
        var seed = await _seeds.EnsureAsync(101, spec, CancellationToken.None);
        Assert.True(seed.Changed);
        Assert.Null(seed.Previous);
        Assert.Matches("^iid-[0-9a-f]{16}$", seed.InstanceId);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(seed.Iso));
        Assert.Contains("Volume id: cidata", await IsoInfoAsync("-d", "-i", seed.Iso), StringComparison.Ordinal);
        var expected = SeedBuilder.Build(CloudInitSeeds.InputFor(101, spec), seed.InstanceId);
        foreach (var (name, bytes) in expected.Files)
            Assert.Equal(System.Text.Encoding.UTF8.GetString(bytes), await IsoInfoAsync("-J", "-i", seed.Iso, "-x", "/" + name));
        // Only the ISO and the state file remain; the work directory is gone.
        Assert.Equal(2, Directory.GetFileSystemEntries(_seeds.Dir).Length);
    }

    [Fact]
    public async Task AConfigDriveSeedIsLabelledConfig2()
    {
        var seed = await _seeds.EnsureAsync(102, Vm("""{"datasource":"configdrive2","hostname":"cd"}"""), CancellationToken.None);
        Assert.Contains("Volume id: config-2", await IsoInfoAsync("-d", "-i", seed.Iso), StringComparison.Ordinal);
        Assert.Contains("\"hostname\": \"cd\"", await IsoInfoAsync("-J", "-i", seed.Iso, "-x", "/openstack/latest/meta_data.json"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheInstanceIdChangesOnlyForReprovisionAndUnchangedContentReusesTheIso()
    {
        var first = await _seeds.EnsureAsync(103, Vm("""{"hostname":"a"}"""), CancellationToken.None);
        var same = await _seeds.EnsureAsync(103, Vm("""{"hostname":"a","on_change":"reboot"}"""), CancellationToken.None);
        Assert.Equal((first.Iso, first.InstanceId, false), (same.Iso, same.InstanceId, same.Changed));

        var changed = await _seeds.EnsureAsync(103, Vm("""{"hostname":"b"}"""), CancellationToken.None);
        Assert.True(changed.Changed);
        Assert.Equal(first.InstanceId, changed.InstanceId);
        Assert.Equal(first.Iso, changed.Previous);
        Assert.NotEqual(first.Iso, changed.Iso);
        CloudInitSeeds.DeleteOld(changed.Previous);

        var reprovisioned = await _seeds.EnsureAsync(103, Vm("""{"hostname":"c","on_change":"reprovision"}"""), CancellationToken.None);
        Assert.NotEqual(first.InstanceId, reprovisioned.InstanceId);
        Assert.Contains($"instance-id: \"{reprovisioned.InstanceId}\"", await IsoInfoAsync("-J", "-i", reprovisioned.Iso, "-x", "/meta-data"), StringComparison.Ordinal);
        Assert.Equal(reprovisioned.InstanceId, _seeds.StateOf(103)!.InstanceId);

        // A new service (a restarted agent) reads the state back.
        var again = new CloudInitSeeds(new AgentOptions { DataDir = _dir.Sub("data"), RunDir = _dir.Sub("run") }, _runner, NullLogger<CloudInitSeeds>.Instance);
        Assert.Equal(reprovisioned.InstanceId, again.StateOf(103)!.InstanceId);

        _seeds.Remove(103);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_seeds.Dir, "103*"));
        Assert.Null(_seeds.StateOf(103));
    }

    [Fact]
    public async Task AFailingIsoToolLeavesNothingBehind()
    {
        var broken = new CloudInitSeeds(new AgentOptions { DataDir = _dir.Sub("data"), RunDir = _dir.Sub("run") }, _runner, NullLogger<CloudInitSeeds>.Instance) { IsoTool = "/nonexistent/genisoimage" };
        var e = await Assert.ThrowsAsync<Kvm.Agent.Problems.AgentProblemException>(() => broken.EnsureAsync(104, Vm("{}"), CancellationToken.None));
        Assert.Contains("cloud-init seed", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(broken.Dir));
        Assert.Null(broken.StateOf(104));
    }
}
