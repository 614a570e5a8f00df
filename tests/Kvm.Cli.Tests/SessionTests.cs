using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Cli.Tests.Support;
using Kvm.Model;

namespace Kvm.Cli.Tests;

/// <summary>The qm session a Proxmox user types, end to end: the real kvmctl against a real agent and a real QEMU (TCG).</summary>
public sealed class SessionTests : IAsyncLifetime
{
    private CliAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await CliAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private async Task<KvmctlResult> Ok(params string[] args)
    {
        var result = await _agent.RunAsync(args);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    [Fact]
    public async Task CreateListStartStatusSetShutdownWaitDestroy()
    {
        var created = await Ok("create", "300", "--name", "web", "--memory", "256", "--cores", "1", "--disk", "scsi0=1G", "--net", "net0=virtio");
        Assert.Contains("VM 300 (web) created", created.Stdout, StringComparison.Ordinal);
        var spec = (await _agent.Client.GetVmAsync(300)).Value;
        Assert.Equal(256, spec.Memory?.SizeMib);
        Assert.Equal(1, spec.Cpu?.Cores);
        Assert.Equal(1, spec.Disks?["scsi0"].SizeGib);
        Assert.Equal("virtio", spec.NetworkInterfaces?["net0"].Model);
        Assert.Equal("stopped", spec.Status);

        var list = await Ok("list");
        var row = Assert.Single(list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("300 ", StringComparison.Ordinal));
        Assert.Matches(@"^300\s+web\s+stopped\s+1\s+256 MiB\s*$", row);
        Assert.Matches(@"^VMID\s+NAME\s+STATUS\s+CPUS\s+MEMORY\s+UPTIME\s+IPS$", list.Stdout.Split('\n')[0]);

        await Ok("start", "300");
        var status = await Ok("status", "300");
        Assert.Equal("status: running\n", status.Stdout);
        Assert.Matches(@"300\s+web\s+running\s+1\s+256 MiB\s+\d+s", (await Ok("list")).Stdout);

        var set = await Ok("set", "300", "--cores", "2");
        Assert.Matches(@"cpu\.cores\s+--cores 2\s+pending", set.Stdout);
        Assert.Contains("pending a restart", set.Stdout, StringComparison.Ordinal);
        var afterSet = (await _agent.Client.GetVmAsync(300)).Value;
        Assert.Equal("running", afterSet.Status);
        Assert.Equal(2, afterSet.Cpu?.Cores);
        Assert.Contains("cpu.cores", afterSet.PendingChanges ?? []);

        await Ok("shutdown", "300", "--timeout", "2", "--force");
        var waited = await Ok("wait", "300", "--timeout", "10");
        Assert.Contains("stopped", waited.Stdout, StringComparison.Ordinal);
        Assert.Equal("status: stopped\n", (await Ok("status", "300")).Stdout);

        await Ok("destroy", "300");
        var empty = await Ok("list");
        Assert.Equal("", empty.Stdout);
        Assert.Equal("[]", (await Ok("list", "--output", "json")).Stdout.Trim());
        Assert.Empty(await _agent.Client.ListVmsAsync());
    }

    [Fact]
    public async Task ShowJsonRoundTripsThroughTheModel()
    {
        await Ok("create", "301", "--name", "db", "--memory", "128", "--cores", "2", "--sockets", "1", "--cpu", "max,flags=+aes",
            "--disk", "virtio0=1G,cache=writeback,discard=on", "--net", "net0=e1000,mac=52:54:00:12:34:56", "--net1", "virtio",
            "--cdrom", "ide2=none", "--boot", "order=virtio0;net0", "--ostype", "l26", "--bios", "seabios", "--tags", "db;prod", "--description", "a database");
        var shown = await Ok("show", "301", "--output", "json");
        var vm = JsonSerializer.Deserialize(shown.Stdout, ModelJsonContext.Default.Vm)!;
        var again = JsonSerializer.SerializeToNode(vm, ModelJsonContext.Default.Vm);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(shown.Stdout), again), shown.Stdout);

        Assert.Equal(301, vm.VmId);
        Assert.Equal("max", vm.Cpu?.Model);
        Assert.Equal(["+aes"], vm.Cpu?.Flags);
        Assert.Equal("writeback", vm.Disks?["virtio0"].Cache);
        Assert.True(vm.Disks?["virtio0"].Discard);
        Assert.Equal("52:54:00:12:34:56", vm.NetworkInterfaces?["net0"].Mac);
        Assert.Equal("virtio", vm.NetworkInterfaces?["net1"].Model);
        Assert.Null(vm.Cdroms?["ide2"].VolumeId);
        Assert.Equal(["virtio0", "net0"], vm.BootOrder);
        Assert.Equal("linux", vm.OsType);
        Assert.Equal("bios", vm.Firmware?.Type);
        Assert.Equal(["db", "prod"], vm.Tags);

        // The spec part sent back unchanged is accepted as is: show output is a valid spec.
        var update = await _agent.Client.UpdateVmAsync(301, vm.ToSpec());
        Assert.Empty(update.Value.Changes);

        var yaml = await Ok("show", "301");
        Assert.Contains("vm_id: 301", yaml.Stdout, StringComparison.Ordinal);
        Assert.Contains("name: db", yaml.Stdout, StringComparison.Ordinal);
        Assert.Contains("size_mib: 128", yaml.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetMergesDevicesDeletesSlotsAndAppliesNamesLive()
    {
        await Ok("create", "302", "--name", "app", "--memory", "128", "--disk", "scsi0=1G,cache=writeback", "--disk", "scsi1=1G", "--net", "net0=virtio", "--net", "net1=e1000");
        var set = await Ok("set", "302", "--disk", "scsi0=2G", "--delete", "scsi1,net1", "--name", "app2");
        Assert.Matches(@"disks\[""scsi0""\]\.size_gib\s+--disk scsi0=2G\s+stored", set.Stdout);
        var vm = (await _agent.Client.GetVmAsync(302)).Value;
        Assert.Equal("app2", vm.Name);
        Assert.Equal(2, vm.Disks?["scsi0"].SizeGib);
        Assert.Equal("writeback", vm.Disks?["scsi0"].Cache);
        Assert.False(vm.Disks?.ContainsKey("scsi1"));
        Assert.Equal(["net0"], vm.NetworkInterfaces?.Keys.ToList());
        Assert.Equal("stopped", vm.Status);

        var running = await Ok("start", "302", "--output", "json");
        Assert.Equal("running", JsonSerializer.Deserialize(running.Stdout, ModelJsonContext.Default.Vm)!.Status);
        var live = await Ok("set", "302", "--name", "app3", "--output", "json");
        var result = JsonSerializer.Deserialize(live.Stdout, ModelJsonContext.Default.VmUpdateResult)!;
        Assert.Contains(result.Changes, c => c.Attribute == "name" && c.Outcome == AppliedChange.Live);
        Assert.Equal("running", result.Vm.Status);

        var refused = await _agent.RunAsync("destroy", "302");
        Assert.Equal(4, refused.ExitCode);
        Assert.Contains("--force", refused.Stderr, StringComparison.Ordinal);
        await Ok("destroy", "302", "--force");
        Assert.Empty(await _agent.Client.ListVmsAsync());
    }
}
