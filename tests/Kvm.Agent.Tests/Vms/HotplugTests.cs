using System.Text.Json.Nodes;
using Kvm.Agent.Tests.Support;
using Kvm.Agent.Vms;
using Kvm.Client;
using Kvm.Model;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.Vms;

/// <summary>
/// Disks and NICs added to and removed from a running VM through the real agent and real QEMU (TCG, the busybox
/// kernel guest, whose ACPI hot-plug driver releases PCI devices): same QEMU process before and after, the devices
/// read back over the agent's own QMP monitor (query-block, query-pci, qom-list), nothing left behind after removal,
/// and a bus without hot-plug (sata) left pending.
/// </summary>
[Collection("qemu")]
public sealed class HotplugTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    private VmMonitor Monitor(long vmId) => _agent.Host.Services.GetRequiredService<VmRuntime>().MonitorOf(vmId)!;

    private async Task<List<string>> BlockNodesAsync(long vmId) =>
        [.. ((JsonArray)(await Monitor(vmId).ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }))!)
            .OfType<JsonObject>().Select(n => n["node-name"]!.GetValue<string>())];

    private async Task<JsonObject?> BlockDeviceAsync(long vmId, string slot) =>
        ((JsonArray)(await Monitor(vmId).ExecuteAsync("query-block"))!).OfType<JsonObject>()
            .FirstOrDefault(b => b["qdev"]?.GetValue<string>() is { } qdev
                && (qdev == slot || qdev == "/machine/peripheral/" + slot || qdev.StartsWith("/machine/peripheral/" + slot + "/", StringComparison.Ordinal)));

    private async Task<bool> DeviceExistsAsync(long vmId, string id)
    {
        try
        {
            await Monitor(vmId).ExecuteAsync("qom-list", new JsonObject { ["path"] = "/machine/peripheral/" + id });
            return true;
        }
        catch (Kvm.Agent.Qemu.QmpException)
        {
            return false;
        }
    }

    /// <summary>qdev id of each PCI device → the qdev id of the bridge (root port) it sits behind, or "" on the root bus.</summary>
    private async Task<Dictionary<string, string>> PciAsync(long vmId)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        void Walk(JsonArray? devices, string parent)
        {
            foreach (var device in devices?.OfType<JsonObject>() ?? [])
            {
                var id = device["qdev_id"]?.GetValue<string>() ?? "";
                if (id.Length > 0)
                    result[id] = parent;
                Walk(device["pci_bridge"]?["devices"] as JsonArray, id);
            }
        }
        foreach (var bus in ((JsonArray)(await Monitor(vmId).ExecuteAsync("query-pci"))!).OfType<JsonObject>())
            Walk(bus["devices"] as JsonArray, "");
        return result;
    }

    private static VmSpec Guest(string name) => new()
    {
        Name = name,
        Memory = new MemorySpec { SizeMib = 256 },
        Display = new DisplaySpec { Vga = "none", Vnc = false },
        Kernel = Support.TestGuest.Kernel,
        Initrd = Support.TestGuest.Initrd,
        Cmdline = "console=ttyS0 panic=-1",
        Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 } },
        NetworkInterfaces = new() { ["net0"] = new NicSpec() },
    };

    [Fact]
    public async Task DisksAndNicsComeAndGoWhileTheVmRuns()
    {
        var name = Specs.UniqueName("hotplug");
        var vm = (await Client.CreateVmAsync(Guest(name))).Value;
        var id = vm.VmId!.Value;
        var pid = vm.Pid;
        await Eventually.TrueAsync(() => File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal),
            TimeSpan.FromSeconds(120), "the guest's boot marker");
        var pciBefore = await PciAsync(id);

        // Add a scsi disk (its own virtio-scsi controller), a virtio disk and a NIC: all live, same QEMU.
        var more = Guest(name);
        more.Disks!["scsi1"] = new DiskSpec { SizeGib = 1, Serial = "hot1" };
        more.Disks["virtio0"] = new DiskSpec { SizeGib = 1 };
        more.NetworkInterfaces!["net1"] = new NicSpec { Model = "e1000" };
        var added = (await Client.UpdateVmAsync(id, more)).Value;
        Assert.All(added.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));
        Assert.Equal(["disks[\"scsi1\"]", "disks[\"virtio0\"]", "network_interfaces[\"net1\"]"], added.Changes.Select(c => c.Attribute));
        Assert.Equal(pid, added.Vm.Pid);
        Assert.Null(added.Vm.PendingChanges);

        var scsi1 = await BlockDeviceAsync(id, "scsi1");
        Assert.NotNull(scsi1);
        Assert.EndsWith($"vm-{id}-disk-scsi1.qcow2", scsi1["inserted"]!["file"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotNull(await BlockDeviceAsync(id, "virtio0"));
        var pci = await PciAsync(id);
        // Nothing that was there moved; each new PCI device sits behind a spare root port.
        foreach (var (device, parent) in pciBefore)
            Assert.Equal(parent, pci[device]);
        Assert.StartsWith("hotplug", pci["virtioscsi1"], StringComparison.Ordinal);
        Assert.StartsWith("hotplug", pci["virtio0"], StringComparison.Ordinal);
        Assert.StartsWith("hotplug", pci["net1"], StringComparison.Ordinal);
        Assert.Equal(3, pci.Where(p => p.Value.StartsWith("hotplug", StringComparison.Ordinal)).Select(p => p.Value).Distinct().Count());
        // Exactly the properties the argv gives the disk: the serial the user set, as at a cold start.
        Assert.Equal("hot1", (await Monitor(id).ExecuteAsync("qom-get", new JsonObject { ["path"] = "/machine/peripheral/scsi1", ["property"] = "serial" }))!.GetValue<string>());
        Assert.Equal(pid, (await Client.GetVmAsync(id)).Value.Pid);

        // Remove them again: gone from QEMU (devices, controllers, block nodes), nothing pending, same QEMU.
        var removed = (await Client.UpdateVmAsync(id, Guest(name))).Value;
        Assert.All(removed.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));
        Assert.Equal(pid, removed.Vm.Pid);
        Assert.Null(removed.Vm.PendingChanges);
        Assert.Null(await BlockDeviceAsync(id, "scsi1"));
        Assert.Null(await BlockDeviceAsync(id, "virtio0"));
        foreach (var device in new[] { "scsi1", "virtioscsi1", "virtio0", "net1" })
            Assert.False(await DeviceExistsAsync(id, device), device);
        Assert.DoesNotContain(await BlockNodesAsync(id), n => n.EndsWith("scsi1", StringComparison.Ordinal) || n.EndsWith("virtio0", StringComparison.Ordinal));
        Assert.Equal(pciBefore, await PciAsync(id));

        // A sata disk has no hot-plug: stored, pending until the next start.
        var sata = Guest(name);
        sata.Disks!["sata1"] = new DiskSpec { SizeGib = 1 };
        var pending = (await Client.UpdateVmAsync(id, sata)).Value;
        Assert.Equal([new AppliedChange("disks[\"sata1\"]", AppliedChange.Pending)], pending.Changes);
        Assert.Equal(["disks[\"sata1\"]"], pending.Vm.PendingChanges);

        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_agent.DataDir, "pools", "default")));
    }

    [Fact]
    public async Task AHotPluggedNicAndDiskSurviveARestartAndWithoutHotplugTheyWaitForIt()
    {
        var name = Specs.UniqueName("hotplug");
        var spec = Specs.Running(name);
        spec.Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 } };
        var vm = (await Client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;

        // Plugged live (a scsi-hd on its controller needs no guest), then the VM restarts with it in its argv.
        var more = Specs.Running(name);
        more.Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 }, ["scsi1"] = new DiskSpec { SizeGib = 1 } };
        more.NetworkInterfaces = new() { ["net0"] = new NicSpec() };
        var added = (await Client.UpdateVmAsync(id, more)).Value;
        Assert.All(added.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));
        await Client.StopVmAsync(id);
        var restarted = await Client.StartVmAsync(id);
        Assert.NotEqual(vm.Pid, restarted.Pid);
        Assert.NotNull(await BlockDeviceAsync(id, "scsi1"));
        Assert.True(await DeviceExistsAsync(id, "net0"));

        // hotplug without disk: a new disk waits for the next start.
        var off = Specs.Running(name);
        off.Hotplug = ["network"];
        off.Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 }, ["scsi1"] = new DiskSpec { SizeGib = 1 }, ["scsi2"] = new DiskSpec { SizeGib = 1 } };
        off.NetworkInterfaces = new() { ["net0"] = new NicSpec() };
        var result = (await Client.UpdateVmAsync(id, off)).Value;
        Assert.Contains(new AppliedChange("disks[\"scsi2\"]", AppliedChange.Pending), result.Changes);
        Assert.Null(await BlockDeviceAsync(id, "scsi2"));
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    [Fact]
    public async Task IoLimitsApplyAtStartAndChangeLive()
    {
        var name = Specs.UniqueName("throttle");
        VmSpec Spec(DiskSpec scsi0)
        {
            var spec = Specs.Running(name);
            spec.Disks = new() { ["scsi0"] = scsi0 };
            return spec;
        }
        var vm = (await Client.CreateVmAsync(Spec(new DiskSpec { SizeGib = 1, MbpsRd = 10, IopsWr = 300 }))).Value;
        var id = vm.VmId!.Value;
        var inserted = (await BlockDeviceAsync(id, "scsi0"))!["inserted"]!;
        Assert.Equal(10L * 1024 * 1024, inserted["bps_rd"]!.GetValue<long>());
        Assert.Equal(300L, inserted["iops_wr"]!.GetValue<long>());

        var changed = (await Client.UpdateVmAsync(id, Spec(new DiskSpec { SizeGib = 1, Mbps = 5, MbpsMax = 20, IopsWr = 300 }))).Value;
        Assert.All(changed.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));
        Assert.Equal(vm.Pid, changed.Vm.Pid);
        inserted = (await BlockDeviceAsync(id, "scsi0"))!["inserted"]!;
        Assert.Equal(0L, inserted["bps_rd"]!.GetValue<long>());
        Assert.Equal(5L * 1024 * 1024, inserted["bps"]!.GetValue<long>());
        Assert.Equal(20L * 1024 * 1024, inserted["bps_max"]!.GetValue<long>());
        Assert.Equal(300L, inserted["iops_wr"]!.GetValue<long>());

        // A hot-plugged disk comes with its limits; lifting them all is live too.
        var plus = Spec(new DiskSpec { SizeGib = 1 });
        plus.Disks!["scsi1"] = new DiskSpec { SizeGib = 1, IopsRd = 50 };
        Assert.All((await Client.UpdateVmAsync(id, plus)).Value.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));
        Assert.Equal(50L, (await BlockDeviceAsync(id, "scsi1"))!["inserted"]!["iops_rd"]!.GetValue<long>());
        inserted = (await BlockDeviceAsync(id, "scsi0"))!["inserted"]!;
        Assert.Equal(0L, inserted["bps"]!.GetValue<long>());
        Assert.Equal(0L, inserted["iops_wr"]!.GetValue<long>());
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }
}
