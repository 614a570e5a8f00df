using System.Text.Json.Nodes;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Agent.Vms;
using Kvm.Client;
using Kvm.Model;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.Vms;

/// <summary>
/// Real agent, real QEMU (TCG): USB entries plugged into and unplugged from the running qemu-xhci controller (a SPICE
/// redirection channel, which needs no host device; a usb-host device this host lacks is refused and left pending), the
/// watchdog action changed live and then fired, and live vCPU and memory changes written into the running spec so that an
/// agent restart still knows what the QEMU has. Same QEMU process throughout.
/// </summary>
[Collection("qemu")]
public sealed class LiveChangeTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    private VmMonitor Monitor(long id) => _agent.Host.Services.GetRequiredService<VmRuntime>().MonitorOf(id)!;

    private async Task<string> HumanAsync(long id, string command) =>
        (await Monitor(id).ExecuteAsync("human-monitor-command", new JsonObject { ["command-line"] = command }))!.GetValue<string>();

    /// <summary>The running spec the agent keeps in the VM's run directory (what an agent restart reads back).</summary>
    private JsonNode RunningSpec(long id) =>
        JsonNode.Parse(File.ReadAllText(Path.Join(_agent.RunDir, id.ToString(System.Globalization.CultureInfo.InvariantCulture), "spec.json")))!;

    [Fact]
    public async Task UsbEntriesComeAndGoLiveOnTheRunningController()
    {
        var spec = Specs.Running();
        spec.Display = new DisplaySpec { Vga = "std", Vnc = false, Spice = true }; // the tablet brings the controller
        var created = await Client.CreateVmAsync(spec);
        var id = created.Value.VmId!.Value;
        var pid = created.Value.Pid;
        Assert.DoesNotContain("usb2", await HumanAsync(id, "info usb"), StringComparison.Ordinal);

        spec = created.Value.ToSpec();
        spec.UsbDevices = new() { ["usb2"] = new UsbDeviceSpec { Host = "spice" } };
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        Assert.Contains(new AppliedChange("usb_devices[\"usb2\"]", AppliedChange.Live), updated.Changes);
        Assert.Equal(pid, updated.Vm.Pid);
        Assert.Null(updated.Vm.PendingChanges);
        // At the port a cold start gives usb2 (N+2), with its spicevmc channel.
        Assert.Matches(@"Port 4, .*ID: usb2", await HumanAsync(id, "info usb"));
        var chardevs = ((JsonArray)(await Monitor(id).ExecuteAsync("query-chardev"))!).Select(c => c!["label"]!.GetValue<string>()).ToList();
        Assert.Contains("usb2-redir", chardevs);
        Assert.Equal("spice", RunningSpec(id)["usb_devices"]!["usb2"]!["host"]!.GetValue<string>());

        // A usb-host device this host does not have is refused as at a start: the entry waits, pending.
        const string Absent = "1234:5678";
        Assert.DoesNotContain(HostDevices.Read().UsbDevices ?? [], d => d.VendorProduct == Absent);
        spec.UsbDevices["usb1"] = new UsbDeviceSpec { Host = Absent };
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Contains(new AppliedChange("usb_devices[\"usb1\"]", AppliedChange.Pending), updated.Changes);
        Assert.Equal(["usb_devices[\"usb1\"]"], updated.Vm.PendingChanges);
        Assert.DoesNotContain("usb1", await HumanAsync(id, "info usb"), StringComparison.Ordinal);

        spec.UsbDevices = null;
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Contains(new AppliedChange("usb_devices[\"usb2\"]", AppliedChange.Live), updated.Changes);
        Assert.Equal(pid, updated.Vm.Pid);
        Assert.Null(updated.Vm.PendingChanges);
        Assert.DoesNotContain("usb2", await HumanAsync(id, "info usb"), StringComparison.Ordinal);
        chardevs = [.. ((JsonArray)(await Monitor(id).ExecuteAsync("query-chardev"))!).Select(c => c!["label"]!.GetValue<string>())];
        Assert.DoesNotContain("usb2-redir", chardevs);
        Assert.Null(RunningSpec(id)["usb_devices"]?["usb2"]);

        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    [Fact]
    public async Task WithoutUsbInHotplugAUsbEntryWaitsForARestart()
    {
        var spec = Specs.Running();
        spec.Display = new DisplaySpec { Vga = "std", Vnc = false, Spice = true };
        spec.Hotplug = ["disk", "network"];
        var created = await Client.CreateVmAsync(spec);
        var id = created.Value.VmId!.Value;
        spec = created.Value.ToSpec();
        spec.UsbDevices = new() { ["usb0"] = new UsbDeviceSpec { Host = "spice" } };
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        Assert.Contains(new AppliedChange("usb_devices[\"usb0\"]", AppliedChange.Pending), updated.Changes);
        Assert.Equal(["usb_devices[\"usb0\"]"], updated.Vm.PendingChanges);
        Assert.DoesNotContain("usb0", await HumanAsync(id, "info usb"), StringComparison.Ordinal);
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    /// <summary>
    /// QEMU has no query for the watchdog action, so the watchdog is made to fire: ib700 is armed by an I/O port write
    /// (HMP <c>o</c>, 0x443 = 14: two seconds), and the VM stops in the <c>watchdog</c> run state — with the action it
    /// started with (reset) it would have reset and kept running.
    /// </summary>
    [Fact]
    public async Task TheWatchdogActionChangesLiveAndIsTheOneThatFires()
    {
        var spec = Specs.Running();
        spec.Watchdog = new WatchdogSpec { Model = "ib700", Action = "reset" };
        var created = await Client.CreateVmAsync(spec);
        var id = created.Value.VmId!.Value;
        var pid = created.Value.Pid;

        spec = created.Value.ToSpec();
        spec.Watchdog!.Action = "pause";
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        Assert.Equal([new AppliedChange("watchdog.action", AppliedChange.Live)], updated.Changes);
        Assert.Equal(pid, updated.Vm.Pid);
        Assert.Null(updated.Vm.PendingChanges);
        Assert.Equal("pause", RunningSpec(id)["watchdog"]!["action"]!.GetValue<string>());

        await HumanAsync(id, "o /b 0x443 14");
        await Eventually.TrueAsync(async () => (await Monitor(id).ExecuteAsync("query-status"))!["status"]!.GetValue<string>() == "watchdog",
            TimeSpan.FromSeconds(20), "the watchdog pausing the VM");
        await Eventually.TrueAsync(async () => (await Client.GetVmAsync(id)).Value.Status == "paused", TimeSpan.FromSeconds(10), "status paused");
        Assert.Equal(pid, (await Client.GetVmAsync(id)).Value.Pid);
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    /// <summary>
    /// vCPUs and memory changed live are written into the running spec (run dir spec.json). After an agent restart the
    /// agent reads it back; when <c>cpu</c> and <c>memory</c> then leave <c>hotplug</c>, nothing is pending — with the
    /// start-time values in the running spec, vcpus and size_mib would be reported as waiting for a restart.
    /// </summary>
    [Fact]
    public async Task LiveVcpuAndMemoryChangesSurviveAnAgentRestartWithoutPendingChanges()
    {
        var spec = Specs.Running();
        spec.Hotplug = ["cpu", "memory"];
        spec.Cpu = new CpuSpec { Cores = 2, Vcpus = 1 };
        spec.Memory = new MemorySpec { SizeMib = 128, HotplugMaxMib = 256 };
        var created = await Client.CreateVmAsync(spec);
        var id = created.Value.VmId!.Value;
        var pid = created.Value.Pid;

        spec = created.Value.ToSpec();
        spec.Cpu!.Vcpus = 2;
        spec.Memory!.SizeMib = 192;
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        Assert.Contains(new AppliedChange("cpu.vcpus", AppliedChange.Live), updated.Changes);
        Assert.Contains(new AppliedChange("memory.size_mib", AppliedChange.Live), updated.Changes);
        Assert.Equal(2, RunningSpec(id)["cpu"]!["vcpus"]!.GetValue<int>());
        Assert.Equal(192, RunningSpec(id)["memory"]!["size_mib"]!.GetValue<long>());

        await _agent.StopAgentOnlyAsync();
        _agent = await TestAgent.RestartOnAsync(_agent.Root);
        var read = (await Client.GetVmAsync(id)).Value;
        Assert.Equal("running", read.Status);
        Assert.Equal(pid, read.Pid);
        Assert.Null(read.PendingChanges);
        Assert.Equal(2, read.Cpu!.Vcpus);
        Assert.Equal(2, ((JsonArray)(await Monitor(id).ExecuteAsync("query-cpus-fast"))!).Count);

        spec = read.ToSpec();
        spec.Hotplug = ["disk"];
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Equal([new AppliedChange("hotplug", AppliedChange.Live)], updated.Changes);
        Assert.Null(updated.Vm.PendingChanges);

        // Now a vCPU change is a restart change: pending, the QEMU keeps its two vCPUs.
        spec.Cpu!.Vcpus = 1;
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Contains(new AppliedChange("cpu.vcpus", AppliedChange.Pending), updated.Changes);
        Assert.Equal(["cpu.vcpus"], updated.Vm.PendingChanges);
        Assert.Equal(2, ((JsonArray)(await Monitor(id).ExecuteAsync("query-cpus-fast"))!).Count);
        Assert.Equal(pid, updated.Vm.Pid);

        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    /// <summary>An agent that adopts a running VM reads its vCPUs and memory back from QEMU, whatever the running spec file says.</summary>
    [Fact]
    public async Task AnAdoptingAgentReadsVcpusAndMemoryBackFromQemu()
    {
        var spec = Specs.Running();
        spec.Hotplug = ["cpu", "memory"];
        spec.Cpu = new CpuSpec { Cores = 2, Vcpus = 1 };
        spec.Memory = new MemorySpec { SizeMib = 128, HotplugMaxMib = 256 };
        var created = await Client.CreateVmAsync(spec);
        var id = created.Value.VmId!.Value;
        spec = created.Value.ToSpec();
        spec.Cpu!.Vcpus = 2;
        spec.Memory!.SizeMib = 192;
        Assert.All((await Client.UpdateVmAsync(id, spec, created.ETag)).Value.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));

        await _agent.StopAgentOnlyAsync();
        // As an agent before live changes were recorded left it: the start values.
        var file = Path.Join(_agent.RunDir, id.ToString(System.Globalization.CultureInfo.InvariantCulture), "spec.json");
        var stale = JsonNode.Parse(File.ReadAllText(file))!;
        stale["cpu"]!["vcpus"] = 1;
        stale["memory"]!["size_mib"] = 128;
        File.WriteAllText(file, stale.ToJsonString());

        _agent = await TestAgent.RestartOnAsync(_agent.Root);
        Assert.Equal(2, RunningSpec(id)["cpu"]!["vcpus"]!.GetValue<int>());
        Assert.Equal(192, RunningSpec(id)["memory"]!["size_mib"]!.GetValue<long>());
        spec = (await Client.GetVmAsync(id)).Value.ToSpec();
        spec.Hotplug = ["disk"];
        Assert.Null((await Client.UpdateVmAsync(id, spec)).Value.Vm.PendingChanges);
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }
}
