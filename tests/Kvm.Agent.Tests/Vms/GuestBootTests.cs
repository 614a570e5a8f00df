using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Vms;

/// <summary>Real guests under TCG: the argv the agent builds really boots firmware and a kernel, with real disks.</summary>
[Collection("qemu")]
public sealed class GuestBootTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    [Fact]
    public async Task AKernelBootsWithItsDiskAndPrintsToTheSerialLogThenPowersOff()
    {
        var spec = new VmSpec
        {
            Name = Specs.UniqueName("boot"),
            Memory = new MemorySpec { SizeMib = 256 },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            Kernel = TestGuest.Kernel,
            Initrd = TestGuest.Initrd,
            Cmdline = "console=ttyS0 panic=-1 kvmtest=poweroff",
            Disks = new() { ["virtio0"] = new DiskSpec { SizeGib = 2 } },
        };
        var vm = (await Client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;
        Assert.Equal("running", vm.Status);
        Assert.NotNull(vm.SerialLog);

        // The guest prints its marker and the disk it sees (virtio0 → vda, 2 GiB = 4194304 sectors), then powers off.
        await Eventually.TrueAsync(() => File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains("KVM-TEST-GUEST-DISK vda 4194304", StringComparison.Ordinal),
            TimeSpan.FromSeconds(90), "the guest's serial output");
        Assert.Contains("KVM-TEST-GUEST-BOOTED", await File.ReadAllTextAsync(vm.SerialLog), StringComparison.Ordinal);
        await Eventually.TrueAsync(async () => (await Client.GetVmAsync(id)).Value.Status == "stopped", TimeSpan.FromSeconds(30), "status stopped after the guest powered off");

        await Client.DeleteVmAsync(id, RunningVmDeletion.Refuse);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_agent.DataDir, "pools", "default")));
    }

    [Fact]
    public async Task AUefiVmWithAQcow2DiskRunsAndLeavesNothingBehind()
    {
        var spec = new VmSpec
        {
            Name = Specs.UniqueName("uefi"),
            Memory = new MemorySpec { SizeMib = 256 },
            Firmware = new FirmwareSpec { Type = "uefi" },
            Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1, Format = "qcow2" } },
            NetworkInterfaces = new() { ["net0"] = new NicSpec() },
        };
        var vm = (await Client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;
        var pid = (int)vm.Pid!.Value;
        Assert.Equal("running", vm.Status);
        var pool = Path.Combine(_agent.DataDir, "pools", "default");
        var disk = Path.Combine(pool, $"vm-{id}-disk-scsi0.qcow2");
        Assert.True(File.Exists(disk));
        var efivars = Directory.EnumerateFiles(_agent.DataDir, "*efivars*", SearchOption.AllDirectories).Single();
        Assert.Equal(new FileInfo("/usr/share/OVMF/OVMF_VARS_4M.fd").Length, new FileInfo(efivars).Length);

        // OVMF runs under TCG; after a few seconds the VM must still be running (not internal-error).
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal("running", (await Client.GetVmAsync(id)).Value.Status);
        Assert.StartsWith("vnc://127.0.0.1:", vm.ConsoleEndpoint, StringComparison.Ordinal);

        var stopped = await Client.ShutdownVmAsync(id, TimeSpan.FromSeconds(2));
        Assert.Equal("stopped", stopped.Status);
        await Client.DeleteVmAsync(id, RunningVmDeletion.Refuse);
        Assert.False(ProcessTable.IsAlive(pid));
        Assert.False(File.Exists(disk));
        Assert.False(File.Exists(efivars));
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_agent.RunDir));
    }
}

/// <summary>A standalone volume grows while the VM that uses it runs: QEMU holds the image, so the agent grows it over QMP.</summary>
[Collection("qemu")]
public sealed class OnlineVolumeGrowTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    [Fact]
    public async Task AVolumeInUseGrowsLiveThroughTheRunningVm()
    {
        var client = _agent.Client;
        var volume = (await client.CreateVolumeAsync(new VolumeSpec { Name = "live.qcow2", SizeGib = 1 })).Value;
        var vm = (await client.CreateVmAsync(new VmSpec
        {
            Name = Specs.UniqueName("grow"),
            Memory = new MemorySpec { SizeMib = 64 },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            Disks = new() { ["virtio0"] = new DiskSpec { VolumeId = volume.VolumeId } },
        })).Value;
        Assert.Equal("running", vm.Status);

        var current = await client.GetVolumeAsync("default", "live.qcow2");
        var grown = new VolumeSpec { Name = "live.qcow2", SizeGib = 3 };
        await client.UpdateVolumeAsync("default", "live.qcow2", grown, current.ETag);

        Assert.Equal(3L * 1024 * 1024 * 1024, (await client.GetVolumeAsync("default", "live.qcow2")).Value.CapacityBytes);
        var after = (await client.GetVmAsync(vm.VmId!.Value)).Value;
        Assert.Equal("running", after.Status);
        Assert.Equal(vm.Pid, after.Pid); // grown in place, not by a restart

        await client.DeleteVmAsync(vm.VmId.Value, RunningVmDeletion.Force);
        await client.DeleteVolumeAsync("default", "live.qcow2");
    }
}
