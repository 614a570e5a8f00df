using System.Globalization;
using System.Net;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Agent.Tpm;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Tpm;

/// <summary>
/// Real swtpm + real QEMU (TCG) with the test kernel, whose built-in tpm_crb / tpm_tis drivers report the TPM on the
/// serial console: the VM sees its TPM, the state survives restarts and agent restarts, is reset only on request,
/// and no swtpm or state outlives the VM.
/// </summary>
[Collection("qemu")]
public sealed class TpmLifecycleTests : IAsyncLifetime
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(90);
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    private static VmSpec KernelGuest(string prefix, TpmSpec? tpm, string machine = "q35") => new()
    {
        Name = Specs.UniqueName(prefix),
        Machine = machine,
        Memory = new MemorySpec { SizeMib = 256 },
        Display = new DisplaySpec { Vga = "none", Vnc = false },
        Kernel = TestGuest.Kernel,
        Initrd = TestGuest.Initrd,
        Cmdline = "console=ttyS0 panic=-1", // no kvmtest=poweroff: the guest stays up
        Tpm = tpm,
    };

    private string StateDir(long id) => Path.Combine(_agent.DataDir, "tpm", id.ToString(CultureInfo.InvariantCulture));

    private string RunDir(long id) => Path.Combine(_agent.RunDir, id.ToString(CultureInfo.InvariantCulture));

    private static async Task GuestSaysAsync(Vm vm, string text) =>
        await Eventually.TrueAsync(() => File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains(text, StringComparison.Ordinal), Boot, $"\"{text}\" on the serial console");

    private int SwtpmPid(long id)
    {
        var pid = Swtpm.PidOf(RunDir(id));
        Assert.True(pid is not null, $"no swtpm runs for VM {id}");
        return pid!.Value;
    }

    /// <summary>Every live swtpm whose command line names a path under this test's directories.</summary>
    private List<int> SwtpmsOfThisTest() =>
        [.. Directory.EnumerateDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var p) ? p : 0)
            .Where(p => p > 0 && ProcessTable.ReadState(p) is not (null or 'Z'))
            .Where(p => ProcessTable.ReadCommandLine(p) is [var exe, ..] args && exe.EndsWith("swtpm", StringComparison.Ordinal)
                && args.Any(a => a.Contains(_agent.Root, StringComparison.Ordinal)))];

    [Fact]
    public async Task ATpm2VmSeesItsTpmKeepsTheStateAcrossRestartsAndAgentRestartsAndLeavesNothingBehind()
    {
        var created = (await Client.CreateVmAsync(KernelGuest("tpm", new TpmSpec()))).Value;
        var id = created.VmId!.Value;
        Assert.Equal("running", created.Status);

        // swtpm runs with the VM's state directory, manufactured by swtpm_setup, and the guest's CRB driver finds it.
        var swtpm = SwtpmPid(id);
        var argv = ProcessTable.ReadCommandLine(swtpm);
        Assert.Contains($"dir={StateDir(id)},mode=0600", argv);
        Assert.Contains("--tpm2", argv);
        Assert.Contains("--terminate", argv);
        Assert.True(File.Exists(Path.Combine(StateDir(id), "tpm2-00.permall")));
        Assert.Equal(new TpmStateRecord("v2.0", 0), Swtpm.ReadRecord(StateDir(id)));
        await GuestSaysAsync(created, "tpm_crb MSFT0101:00");

        // The state survives a stop and a start: same directory, never re-manufactured (the sentinel stays).
        var sentinel = Path.Combine(StateDir(id), "sentinel");
        await File.WriteAllTextAsync(sentinel, "kept");
        var stopped = await Client.StopVmAsync(id);
        Assert.Equal("stopped", stopped.Status);
        Assert.False(ProcessTable.IsAlive(swtpm), "swtpm outlived its QEMU");
        Assert.False(Directory.Exists(RunDir(id)));
        Assert.True(File.Exists(sentinel));
        var started = await Client.StartVmAsync(id);
        var swtpm2 = SwtpmPid(id);
        Assert.NotEqual(swtpm, swtpm2);
        Assert.True(File.Exists(sentinel), "a restart reset the TPM state");
        await GuestSaysAsync(started, "tpm_crb MSFT0101:00");

        // An agent restart adopts the VM and leaves its swtpm alone; a later stop still stops it.
        var startTime = ProcessTable.ReadStartTime(swtpm2);
        await _agent.StopAgentOnlyAsync();
        Assert.True(ProcessTable.IsAlive(swtpm2), "swtpm died with the agent");
        _agent = await TestAgent.RestartOnAsync(_agent.Root);
        Assert.Equal("running", (await Client.GetVmAsync(id)).Value.Status);
        Assert.Equal(swtpm2, SwtpmPid(id));
        Assert.Equal(startTime, ProcessTable.ReadStartTime(swtpm2));
        await Client.StopVmAsync(id);
        Assert.False(ProcessTable.IsAlive(swtpm2), "the adopted VM's swtpm outlived its QEMU");

        // Delete removes the state; no swtpm of this test is left anywhere.
        await Client.DeleteVmAsync(id);
        Assert.False(Directory.Exists(StateDir(id)));
        Assert.Empty(SwtpmsOfThisTest());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_agent.DataDir, "logs")));
    }

    [Fact]
    public async Task AddingResettingAndRemovingATpmAreInPlaceRestartChanges()
    {
        var created = await Client.CreateVmAsync(KernelGuest("tpmupd", tpm: null));
        var id = created.Value.VmId!.Value;
        Assert.Null(Swtpm.PidOf(RunDir(id)));

        // Add: stored, pending until the next start (the VM keeps its QEMU); the reboot brings the TPM.
        var add = created.Value.ToSpec();
        add.Tpm = new TpmSpec();
        var added = (await Client.UpdateVmAsync(id, add, created.ETag)).Value;
        Assert.Contains(new AppliedChange("tpm", AppliedChange.Pending), added.Changes);
        Assert.Equal(created.Value.Pid, added.Vm.Pid);
        var rebooted = await Client.RebootVmAsync(id, TimeSpan.FromSeconds(1));
        Assert.Null(rebooted.PendingChanges);
        SwtpmPid(id);
        await GuestSaysAsync(rebooted, "tpm_crb MSFT0101:00");
        var sentinel = Path.Combine(StateDir(id), "sentinel");
        await File.WriteAllTextAsync(sentinel, "old TPM");

        // A version change alone is refused: it would silently replace the TPM.
        var (current, etag) = await Client.GetVmAsync(id);
        var v12 = current.ToSpec();
        v12.Tpm = new TpmSpec { Version = "v1.2" };
        var refused = await Assert.ThrowsAsync<KvmApiException>(() => Client.UpdateVmAsync(id, v12, etag));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.Status);
        Assert.Contains(refused.Errors, e => e.Attribute == "tpm.version");

        // A new state_generation is the explicit reset: at the next start the TPM is manufactured again.
        var reset = current.ToSpec();
        reset.Tpm = new TpmSpec { StateGeneration = 1 };
        var resetResult = (await Client.UpdateVmAsync(id, reset, etag)).Value;
        Assert.Contains(new AppliedChange("tpm.state_generation", AppliedChange.Pending), resetResult.Changes);
        Assert.True(File.Exists(sentinel), "the state was reset before the restart");
        await Client.RebootVmAsync(id, TimeSpan.FromSeconds(1));
        Assert.False(File.Exists(sentinel), "the state was not reset");
        Assert.Equal(new TpmStateRecord("v2.0", 1), Swtpm.ReadRecord(StateDir(id)));

        // Remove: pending; at the restart swtpm is gone and so is the state.
        var (withTpm, etag2) = await Client.GetVmAsync(id);
        var remove = withTpm.ToSpec();
        remove.Tpm = null;
        var removed = (await Client.UpdateVmAsync(id, remove, etag2)).Value;
        Assert.Contains(new AppliedChange("tpm", AppliedChange.Pending), removed.Changes);
        Assert.NotNull(Swtpm.PidOf(RunDir(id))); // still in use by the running QEMU
        await Client.RebootVmAsync(id, TimeSpan.FromSeconds(1));
        Assert.Null(Swtpm.PidOf(RunDir(id)));
        Assert.False(Directory.Exists(StateDir(id)));
        Assert.Empty(SwtpmsOfThisTest());

        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
        Assert.Empty(SwtpmsOfThisTest());
    }

    [Fact]
    public async Task ATpm12VmOnPcGetsATisTpmAndAKilledQemuTakesItsSwtpmAlong()
    {
        var vm = (await Client.CreateVmAsync(KernelGuest("tpm12", new TpmSpec { Version = "v1.2" }, machine: "pc"))).Value;
        var id = vm.VmId!.Value;
        var swtpm = SwtpmPid(id);
        Assert.DoesNotContain("--tpm2", ProcessTable.ReadCommandLine(swtpm));
        Assert.True(File.Exists(Path.Combine(StateDir(id), "tpm-00.permall")));
        await GuestSaysAsync(vm, "1.2 TPM");

        ProcessTable.Signal((int)vm.Pid!.Value, Posix.SIGKILL);
        await Eventually.TrueAsync(async () => (await Client.GetVmAsync(id)).Value.Status == "crashed", TimeSpan.FromSeconds(10), "status crashed");
        await Eventually.TrueAsync(() => !ProcessTable.IsAlive(swtpm), TimeSpan.FromSeconds(10), "swtpm gone with its QEMU");
        Assert.True(File.Exists(Path.Combine(StateDir(id), "tpm-00.permall")), "a crash lost the TPM state");

        await Client.DeleteVmAsync(id);
        Assert.False(Directory.Exists(StateDir(id)));
        Assert.Empty(SwtpmsOfThisTest());
    }
}
