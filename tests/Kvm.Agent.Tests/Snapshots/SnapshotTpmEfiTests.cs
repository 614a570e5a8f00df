using System.Globalization;
using System.Net;
using Kvm.Agent.Firmware;
using Kvm.Agent.Tests.Support;
using Kvm.Agent.Tpm;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Snapshots;

/// <summary>
/// Snapshots carry what lives outside the disk images: the swtpm state (real swtpm + real QEMU under TCG with the test
/// kernel, whose tpm_crb driver reports the TPM) and the EFI variable store (edited with the agent's own
/// <see cref="EfiVarStore"/>). A change after the snapshot (a TPM manufactured anew, a variable added) is undone by the
/// rollback, byte for byte; deleting the snapshot or the VM deletes the saved copies.
/// </summary>
[Collection("qemu")]
public sealed class SnapshotTpmEfiTests : IAsyncLifetime
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(90);
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    private string Pool => Path.Combine(_agent.DataDir, "pools", "default");

    private string VmsDir => Path.Combine(_agent.DataDir, "vms");

    private string StateDir(long id) => Path.Combine(_agent.DataDir, "tpm", id.ToString(CultureInfo.InvariantCulture));

    private string Permall(long id) => Path.Combine(StateDir(id), "tpm2-00.permall");

    private string SavedDir(long id, string name) => Path.Combine(VmsDir, $"{id}.snapshots", name);

    private string RunDir(long id) => Path.Combine(_agent.RunDir, id.ToString(CultureInfo.InvariantCulture));

    private static async Task GuestSaysAsync(string serialLog, string text) =>
        await Eventually.TrueAsync(() => File.Exists(serialLog) && File.ReadAllText(serialLog).Contains(text, StringComparison.Ordinal), Boot, $"\"{text}\" on the serial console");

    [Fact]
    public async Task TheTpmStateIsSavedWithEverySnapshotAndARollbackPutsItBackForSwtpm()
    {
        var spec = TestGuest.Spec("snaptpm");
        spec.Disks = new() { ["virtio0"] = new DiskSpec { SizeGib = 1 } };
        spec.Tpm = new TpmSpec();
        var vm = (await Client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;
        await GuestSaysAsync(vm.SerialLog!, "tpm_crb MSFT0101:00");
        // A marker in the state directory travels with the state: gone when the TPM is manufactured anew, back with a rollback.
        await File.WriteAllTextAsync(Path.Combine(StateDir(id), "sentinel"), "the TPM of snapshot t1");

        // A disks-only snapshot of the running VM: the guest is paused for the disks and the copy of the state, then runs on.
        var t1 = (await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "t1" })).Value;
        Assert.Equal("running", t1.VmStatus);
        Assert.Equal("v2.0", t1.TpmState);
        Assert.False(t1.EfiVars);
        Assert.Equal(0, t1.VmStateBytes);
        Assert.Equal("running", (await Client.GetVmAsync(id)).Value.Status);
        var saved = Path.Combine(SavedDir(id, "t1"), "tpm");
        var savedPermall = await File.ReadAllBytesAsync(Path.Combine(saved, "tpm2-00.permall"));
        Assert.True(File.Exists(Path.Combine(saved, "sentinel")));
        Assert.False(File.Exists(Path.Combine(saved, ".lock")), "swtpm's lock file is not state");
        Assert.Equal(t1, (await Client.GetSnapshotAsync(id, "t1")).Value, SnapshotComparer.Instance);

        // A memory snapshot right after it holds the same TPM (and its volatile state inside QEMU's vmstate).
        var mem = (await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "mem", IncludeMemory = true })).Value;
        Assert.Equal("v2.0", mem.TpmState);
        Assert.True(mem.VmStateBytes > 0);
        Assert.Equal("t1", mem.Parent);
        var memPermall = await File.ReadAllBytesAsync(Path.Combine(SavedDir(id, "mem"), "tpm", "tpm2-00.permall"));

        // Change the TPM: an explicit reset manufactures a new one (new endorsement key) at the next start.
        await Client.StopVmAsync(id);
        var (stopped, etag) = await Client.GetVmAsync(id);
        var reset = stopped.ToSpec();
        reset.Tpm = new TpmSpec { StateGeneration = 1 };
        await Client.UpdateVmAsync(id, reset, etag);
        var renewed = await Client.StartVmAsync(id);
        Assert.Equal(new TpmStateRecord("v2.0", 1), Swtpm.ReadRecord(StateDir(id)));
        Assert.False(File.Exists(Path.Combine(StateDir(id), "sentinel")), "the reset kept the old state");
        Assert.NotEqual(savedPermall, await File.ReadAllBytesAsync(Permall(id)));
        Assert.NotEqual(memPermall, await File.ReadAllBytesAsync(Permall(id)));
        await GuestSaysAsync(renewed.SerialLog!, "tpm_crb MSFT0101:00");

        // Memory rollback of the running VM: the same QEMU loads the saved moment (swtpm gets the saved TPM from the vmstate),
        // and the state files on disk are the snapshot's too, so a later cold start agrees.
        var loaded = await Client.RollbackSnapshotAsync(id, "mem");
        Assert.Equal("running", loaded.Status);
        Assert.Equal(renewed.Pid, loaded.Pid);
        Assert.Equal(memPermall, await File.ReadAllBytesAsync(Permall(id)));
        Assert.Equal("the TPM of snapshot t1", await File.ReadAllTextAsync(Path.Combine(StateDir(id), "sentinel")));

        // Disks-only rollback of the running VM, left stopped: the state files are the saved ones again, byte for byte, and
        // the record is made for the present tpm settings, so the next start keeps this state rather than manufacturing another.
        var rolled = await Client.RollbackSnapshotAsync(id, "t1", start: false);
        Assert.Equal("stopped", rolled.Status);
        Assert.Null(Swtpm.PidOf(RunDir(id)));
        Assert.Equal(savedPermall, await File.ReadAllBytesAsync(Permall(id)));
        Assert.Equal(new TpmStateRecord("v2.0", 1), Swtpm.ReadRecord(StateDir(id)));
        var started = await Client.StartVmAsync(id);
        Assert.NotNull(Swtpm.PidOf(RunDir(id)));
        Assert.True(File.Exists(Path.Combine(StateDir(id), "sentinel")), "swtpm started on a new TPM instead of the restored one");
        await GuestSaysAsync(started.SerialLog!, "tpm_crb MSFT0101:00");

        // Disks-only rollback of the running VM: QEMU and swtpm are restarted on the saved state.
        var swtpmBefore = Swtpm.PidOf(RunDir(id));
        await File.WriteAllTextAsync(Path.Combine(StateDir(id), "stray"), "not in the snapshot");
        var restarted = await Client.RollbackSnapshotAsync(id, "t1");
        Assert.Equal("running", restarted.Status);
        Assert.NotEqual(started.Pid, restarted.Pid);
        Assert.NotNull(Swtpm.PidOf(RunDir(id)));
        Assert.NotEqual(swtpmBefore, Swtpm.PidOf(RunDir(id)));
        Assert.True(File.Exists(Path.Combine(StateDir(id), "sentinel")));
        Assert.False(File.Exists(Path.Combine(StateDir(id), "stray")), "a file the snapshot does not hold stayed in the state");
        await GuestSaysAsync(restarted.SerialLog!, "tpm_crb MSFT0101:00");

        // Memory rollback from a stopped VM: the state goes back before swtpm starts, then QEMU loads the saved moment.
        await Client.StopVmAsync(id);
        var fromStopped = await Client.RollbackSnapshotAsync(id, "mem");
        Assert.Equal("running", fromStopped.Status);
        Assert.NotNull(Swtpm.PidOf(RunDir(id)));
        Assert.Equal(memPermall, await File.ReadAllBytesAsync(Permall(id)));

        // Deleting a snapshot deletes its saved state; the other keeps its own.
        await Client.DeleteSnapshotAsync(id, "t1");
        Assert.False(Directory.Exists(SavedDir(id, "t1")));
        Assert.True(Directory.Exists(SavedDir(id, "mem")));

        // A snapshot's TPM must fit the VM: with the TPM removed, the rollback is refused and nothing changes.
        await Client.StopVmAsync(id);
        var (current, etag2) = await Client.GetVmAsync(id);
        var noTpm = current.ToSpec();
        noTpm.Tpm = null;
        noTpm.PowerState = "stopped";
        await Client.UpdateVmAsync(id, noTpm, etag2);
        var before = await File.ReadAllBytesAsync(Permall(id)); // removed only at the next start
        var refused = await Assert.ThrowsAsync<KvmApiException>(() => Client.RollbackSnapshotAsync(id, "mem"));
        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Contains("TPM v2.0", refused.Detail, StringComparison.Ordinal);
        Assert.Equal("stopped", (await Client.GetVmAsync(id)).Value.Status);
        Assert.Equal(before, await File.ReadAllBytesAsync(Permall(id)));

        // Deleting the VM deletes every saved copy.
        await Client.DeleteVmAsync(id);
        Assert.False(Directory.Exists(Path.Combine(VmsDir, $"{id}.snapshots")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(VmsDir, $"{id}.*"));
        Assert.False(Directory.Exists(StateDir(id)));
        Assert.Empty(Directory.EnumerateFiles(Pool));
    }

    [Fact]
    public async Task TheEfiVariableStoreIsSavedWithASnapshotAndARollbackUndoesAVariableChange()
    {
        var vm = (await Client.CreateVmAsync(new VmSpec
        {
            Name = Specs.UniqueName("snapefi"),
            PowerState = "stopped",
            Memory = new MemorySpec { SizeMib = 256 },
            Firmware = new FirmwareSpec { Type = "uefi" },
            Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 } },
        })).Value;
        var id = vm.VmId!.Value;
        var store = Path.Combine(VmsDir, $"{id}.efivars.fd");
        var original = await File.ReadAllBytesAsync(store);
        Assert.Null(EfiVarStore.Parse(original).Find("Timeout", EfiGuids.GlobalVariable));

        var snapshot = (await Client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "vars" })).Value;
        Assert.True(snapshot.EfiVars);
        Assert.Null(snapshot.TpmState);
        Assert.Equal(["scsi0"], snapshot.Disks);
        Assert.Equal(original, await File.ReadAllBytesAsync(Path.Combine(SavedDir(id, "vars"), "efivars.fd")));

        // A variable set after the snapshot (as the firmware would store it) …
        await File.WriteAllBytesAsync(store, EfiVarStore.Parse(original).With("Timeout", EfiGuids.GlobalVariable, [5, 0]).ToArray());
        Assert.Equal([5, 0], EfiVarStore.Parse(await File.ReadAllBytesAsync(store)).Find("Timeout", EfiGuids.GlobalVariable)!.Data);

        // … is gone after the rollback: the store is the saved one again.
        var rolled = await Client.RollbackSnapshotAsync(id, "vars");
        Assert.Equal("stopped", rolled.Status);
        var back = await File.ReadAllBytesAsync(store);
        Assert.Null(EfiVarStore.Parse(back).Find("Timeout", EfiGuids.GlobalVariable));
        Assert.Equal(original, back);

        await Client.DeleteSnapshotAsync(id, "vars");
        Assert.False(Directory.Exists(Path.Combine(VmsDir, $"{id}.snapshots")));
        Assert.True(File.Exists(store), "deleting a snapshot deleted the VM's own store");
        await Client.DeleteVmAsync(id);
        Assert.Empty(Directory.EnumerateFileSystemEntries(VmsDir, $"{id}.*"));
    }

    private sealed class SnapshotComparer : IEqualityComparer<Snapshot>
    {
        public static readonly SnapshotComparer Instance = new();

        public bool Equals(Snapshot? x, Snapshot? y) =>
            x?.Name == y?.Name && x?.TpmState == y?.TpmState && x?.EfiVars == y?.EfiVars && x?.CreatedAt == y?.CreatedAt;

        public int GetHashCode(Snapshot obj) => obj.Name?.GetHashCode(StringComparison.Ordinal) ?? 0;
    }
}
