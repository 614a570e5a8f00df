using System.Net;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Snapshots;

/// <summary>
/// Snapshots through the real agent, real qemu-img and real QEMU (TCG): disk content written with <c>qemu-io</c> returns on
/// rollback, memory snapshots of a running kernel guest resume it without a new boot, raw disks are refused by name, and
/// deleting the VM leaves nothing behind.
/// </summary>
[Collection("qemu")]
public sealed class SnapshotTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    private string Pool => Path.Combine(_agent.DataDir, "pools", "default");

    private static async Task<CommandResult> RunAsync(params string[] argv) =>
        await new CommandRunner().RunAsync(argv, TimeSpan.FromSeconds(60));

    /// <summary>Writes 4 KiB of <paramref name="pattern"/> at offset 0 of a stopped VM's image.</summary>
    private static async Task WriteAsync(string image, byte pattern)
    {
        var result = await RunAsync("qemu-io", "-f", "qcow2", "-c", $"write -P 0x{pattern:x2} 0 4k", image);
        Assert.True(result.Ok, result.StdErr);
    }

    /// <summary>True when the first 4 KiB of the image all hold <paramref name="pattern"/>.</summary>
    private static async Task<bool> HoldsAsync(string image, byte pattern)
    {
        var result = await RunAsync("qemu-io", "-U", "-r", "-f", "qcow2", "-c", $"read -P 0x{pattern:x2} 0 4k", image);
        return result.Ok && !result.StdOut.Contains("Pattern verification failed", StringComparison.Ordinal)
            && !result.StdErr.Contains("Pattern verification failed", StringComparison.Ordinal);
    }

    private static async Task<string> ImageSnapshotsAsync(string image) =>
        (await RunAsync("qemu-img", "snapshot", "-U", "-l", "--image-opts", "driver=qcow2,file.driver=file,file.filename=" + image)).StdOut;

    [Fact]
    public async Task AStoppedVmsDisksRollBackToTheSnapshotAndTheSnapshotsGoWithTheVm()
    {
        var vm = (await Client.CreateVmAsync(new VmSpec
        {
            Name = Specs.UniqueName("snap"),
            PowerState = "stopped",
            Memory = new MemorySpec { SizeMib = 64 },
            Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 }, ["virtio1"] = new DiskSpec { SizeGib = 1 } },
        })).Value;
        var id = vm.VmId!.Value;
        var scsi0 = Path.Combine(Pool, $"vm-{id}-disk-scsi0.qcow2");
        var virtio1 = Path.Combine(Pool, $"vm-{id}-disk-virtio1.qcow2");
        await WriteAsync(scsi0, 0x41);
        await WriteAsync(virtio1, 0x61);

        // A stopped VM is snapshotted with qemu-img: every disk holds the snapshot.
        var created = await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "before", Description = "clean" });
        var before = created.Value;
        Assert.Equal($"{id}/before", before.SnapshotId);
        Assert.Equal("stopped", before.VmStatus);
        Assert.Equal(["scsi0", "virtio1"], before.Disks);
        Assert.Null(before.Parent);
        Assert.Equal(0, before.VmStateBytes);
        Assert.Contains("before", await ImageSnapshotsAsync(scsi0), StringComparison.Ordinal);
        Assert.Contains("before", await ImageSnapshotsAsync(virtio1), StringComparison.Ordinal);

        // Idempotent: the same name and kind returns the same snapshot; another kind under that name is a conflict.
        var again = (await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "before" })).Value;
        Assert.Equal(before.CreatedAt, again.CreatedAt);
        var conflict = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "before", IncludeMemory = true }));
        Assert.Equal(HttpStatusCode.Conflict, conflict.Status);
        // Memory needs a running VM.
        var stoppedMemory = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "mem", IncludeMemory = true }));
        Assert.Contains("running", stoppedMemory.Detail, StringComparison.Ordinal);

        // The description changes in place; include_memory cannot.
        var described = (await Client.UpdateSnapshotAsync(id, "before", new SnapshotSpec { VmId = id, Name = "before", Description = "renamed" })).Value;
        Assert.Equal("renamed", described.Description);
        var replace = await Assert.ThrowsAsync<KvmApiException>(() => Client.UpdateSnapshotAsync(id, "before", new SnapshotSpec { VmId = id, Name = "before", IncludeMemory = true }));
        Assert.Equal(ProblemTypes.RequiresReplacement, replace.Type);

        // New content, a second snapshot whose parent is the first, then a rollback to the first.
        await WriteAsync(scsi0, 0x42);
        await WriteAsync(virtio1, 0x62);
        var after = (await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "after" })).Value;
        Assert.Equal("before", after.Parent);
        await WriteAsync(scsi0, 0x43);
        var rolled = await Client.RollbackSnapshotAsync(id, "before");
        Assert.Equal("stopped", rolled.Status);
        Assert.True(await HoldsAsync(scsi0, 0x41), "scsi0 holds the content of 'before' again");
        Assert.True(await HoldsAsync(virtio1, 0x61), "virtio1 holds the content of 'before' again");
        Assert.False(await HoldsAsync(scsi0, 0x42));

        // Deleting 'before' re-parents 'after'; deleting it twice is fine.
        await Client.DeleteSnapshotAsync(id, "before");
        await Client.DeleteSnapshotAsync(id, "before");
        Assert.DoesNotContain("before", await ImageSnapshotsAsync(scsi0), StringComparison.Ordinal);
        var list = await Client.ListSnapshotsAsync(id);
        Assert.Equal("after", Assert.Single(list).Name);
        Assert.Null(list[0].Parent);
        var missing = await Assert.ThrowsAsync<KvmApiException>(() => Client.GetSnapshotAsync(id, "before"));
        Assert.True(missing.IsNotFound);

        // Rolling back to 'after' brings its content back.
        await Client.RollbackSnapshotAsync(id, "after");
        Assert.True(await HoldsAsync(scsi0, 0x42));

        // The VM takes its snapshots with it: images and metadata.
        await Client.DeleteVmAsync(id);
        Assert.Empty(Directory.EnumerateFiles(Pool));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_agent.DataDir, "vms"), $"{id}.*"));
        Assert.True((await Assert.ThrowsAsync<KvmApiException>(() => Client.ListSnapshotsAsync(id))).IsNotFound);
    }

    [Fact]
    public async Task ARawDiskRefusesTheSnapshotNamingTheDisk()
    {
        var vm = (await Client.CreateVmAsync(new VmSpec
        {
            Name = Specs.UniqueName("snapraw"),
            PowerState = "stopped",
            Memory = new MemorySpec { SizeMib = 64 },
            Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 }, ["scsi1"] = new DiskSpec { SizeGib = 1, Format = "raw" } },
        })).Value;
        var id = vm.VmId!.Value;
        var refused = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "s1" }));
        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Contains("disk scsi1", refused.Detail, StringComparison.Ordinal);
        Assert.Contains("raw", refused.Detail, StringComparison.Ordinal);
        Assert.Empty(await Client.ListSnapshotsAsync(id));
        Assert.DoesNotContain("s1", await ImageSnapshotsAsync(Path.Combine(Pool, $"vm-{id}-disk-scsi0.qcow2")), StringComparison.Ordinal);

        // Invalid names are refused by the model.
        var invalid = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "current" }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, invalid.Status);
        await Client.DeleteVmAsync(id);
    }

    [Fact]
    public async Task ARunningKernelGuestIsSnapshottedWithItsMemoryAndResumesFromItWithoutBooting()
    {
        var spec = TestGuest.Spec("snapmem");
        spec.Disks = new() { ["virtio0"] = new DiskSpec { SizeGib = 1 } };
        var vm = (await Client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;
        await Eventually.TrueAsync(() => File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal),
            TimeSpan.FromSeconds(90), "the guest's boot marker");

        // Disks only, while running: one QMP transaction (no guest agent here, so nothing is frozen).
        var disksOnly = (await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "disks" })).Value;
        Assert.Equal("running", disksOnly.VmStatus);
        Assert.False(disksOnly.FsFrozen);
        Assert.Equal(0, disksOnly.VmStateBytes);
        // With memory: snapshot-save stores the VM state in the first disk's image.
        var withMemory = (await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "booted", IncludeMemory = true })).Value;
        Assert.True(withMemory.IncludeMemory);
        Assert.Equal("disks", withMemory.Parent);
        Assert.True(withMemory.VmStateBytes > 0, "the memory state has a size");
        Assert.Equal("running", (await Client.GetVmAsync(id)).Value.Status);
        var image = Path.Combine(Pool, $"vm-{id}-disk-virtio0.qcow2");
        var listed = await ImageSnapshotsAsync(image);
        Assert.Contains("booted", listed, StringComparison.Ordinal);
        Assert.Contains("disks", listed, StringComparison.Ordinal);

        // Stop the VM, roll back: the agent starts QEMU and loads the saved state, so the guest runs on from the shell prompt
        // without booting again. QEMU truncates the serial log at start: a new boot would print the marker again within seconds.
        await Client.StopVmAsync(id);
        var rolled = await Client.RollbackSnapshotAsync(id, "booted");
        Assert.Equal("running", rolled.Status);
        await Task.Delay(TimeSpan.FromSeconds(20));
        Assert.Equal("running", (await Client.GetVmAsync(id)).Value.Status);
        Assert.DoesNotContain("KVM-TEST-GUEST-BOOTED", File.ReadAllText(vm.SerialLog!), StringComparison.Ordinal);
        Assert.DoesNotContain("Linux version", File.ReadAllText(vm.SerialLog!), StringComparison.Ordinal);

        // Control: a disks-only rollback restarts QEMU, and the guest boots again and prints its marker.
        var restarted = await Client.RollbackSnapshotAsync(id, "disks");
        Assert.Equal("running", restarted.Status);
        Assert.NotEqual(rolled.Pid, restarted.Pid);
        await Eventually.TrueAsync(() => File.ReadAllText(vm.SerialLog!).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal),
            TimeSpan.FromSeconds(90), "a fresh boot after the disks-only rollback");

        // Deleting snapshots of a running VM goes through QMP.
        await Client.DeleteSnapshotAsync(id, "booted");
        Assert.DoesNotContain("booted", await ImageSnapshotsAsync(image), StringComparison.Ordinal);
        Assert.Equal("running", (await Client.GetVmAsync(id)).Value.Status);
        var pid = (int)(await Client.GetVmAsync(id)).Value.Pid!.Value;
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
        Assert.False(ProcessTable.IsAlive(pid));
        Assert.Empty(Directory.EnumerateFiles(Pool));
    }
    [Fact]
    public async Task AUefiVmIsSnapshottedWithMemoryAndItsVariableStoreAndRolledBackInTheSameQemu()
    {
        var vm = (await Client.CreateVmAsync(new VmSpec
        {
            Name = Specs.UniqueName("snapuefi"),
            Memory = new MemorySpec { SizeMib = 256 },
            Firmware = new FirmwareSpec { Type = "uefi" },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 } },
        })).Value;
        var id = vm.VmId!.Value;
        await Task.Delay(TimeSpan.FromSeconds(3)); // OVMF runs under TCG
        // The raw EFI variable store is not a snapshot device: the qcow2 disk holds the snapshot and the memory state, and the
        // store is copied next to the snapshot's metadata while the guest is paused.
        var snapshot = (await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "fw", IncludeMemory = true })).Value;
        Assert.Equal(["scsi0"], snapshot.Disks);
        Assert.True(snapshot.VmStateBytes > 0);
        Assert.True(snapshot.EfiVars);
        Assert.Null(snapshot.TpmState);
        Assert.True(File.Exists(Path.Combine(_agent.DataDir, "vms", $"{id}.snapshots", "fw", "efivars.fd")));
        var rolled = await Client.RollbackSnapshotAsync(id, "fw");
        Assert.Equal("running", rolled.Status);
        Assert.Equal(vm.Pid, rolled.Pid);
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
        Assert.Empty(Directory.EnumerateFiles(Pool));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_agent.DataDir, "vms"), $"{id}.*"));
    }
}
