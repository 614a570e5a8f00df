using System.Globalization;
using System.Net;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Client.Operations;
using Kvm.Model;

namespace Kvm.Agent.Tests.Migration;

/// <summary>
/// Migration between two real agents on loopback (separate data and run directories), with real QEMU (TCG), real NBD
/// exports and real qemu-img: a running kernel guest moves live with its disk and is not rebooted, a stopped UEFI VM moves
/// cold with its disk and EFI variable store, refusals change nothing on either host, and an abort leaves nothing behind.
/// </summary>
[Collection("qemu")]
public sealed class MigrationTests : IAsyncLifetime
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(60);
    private TestAgent _source = null!;
    private TestAgent _target = null!;

    public async Task InitializeAsync()
    {
        _source = await TestAgent.StartAsync();
        _target = await TestAgent.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _source.DisposeAsync();
        await _target.DisposeAsync();
    }

    private static long NewId() => Random.Shared.NextInt64(10_000, 900_000_000);

    private static string Pool(TestAgent agent) => Path.Combine(agent.DataDir, "pools", "default");

    private static string Disk(TestAgent agent, long id, string slot = "scsi0") => Path.Combine(Pool(agent), $"vm-{id}-disk-{slot}.qcow2");

    private static string EfiVars(TestAgent agent, long id) => Path.Combine(agent.DataDir, "vms", $"{id.ToString(CultureInfo.InvariantCulture)}.efivars.fd");

    private static VmSpec KernelGuest(long id, string power = "running")
    {
        var spec = TestGuest.Spec("mig", memoryMib: 128); // no kvmtest=poweroff: the guest stays up
        spec.VmId = id;
        spec.Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1 } };
        spec.PowerState = power;
        spec.Migration = new MigrationSpec { Enabled = true };
        return spec;
    }

    private static async Task<CommandResult> RunAsync(params string[] argv) => await new CommandRunner().RunAsync(argv, TimeSpan.FromSeconds(60));

    private static async Task WriteAsync(string image, byte pattern, string at = "0")
    {
        var result = await RunAsync("qemu-io", "-f", "qcow2", "-c", $"write -P 0x{pattern:x2} {at} 64k", image);
        Assert.True(result.Ok, result.StdErr);
    }

    private static async Task<bool> HoldsAsync(string image, byte pattern, string at = "0")
    {
        var result = await RunAsync("qemu-io", "-U", "-r", "-f", "qcow2", "-c", $"read -P 0x{pattern:x2} {at} 64k", image);
        return result.Ok && !(result.StdOut + result.StdErr).Contains("Pattern verification failed", StringComparison.Ordinal);
    }

    private static string Serial(Vm vm) => File.Exists(vm.SerialLog) ? File.ReadAllText(vm.SerialLog) : "";

    [Fact]
    public async Task ARunningVmMovesLiveWithItsDiskWithoutARebootAndNothingStaysOnTheSource()
    {
        var id = NewId();
        await _source.Client.CreateVmAsync(KernelGuest(id, power: "stopped"));
        await WriteAsync(Disk(_source, id), 0xab);
        var running = await _source.Client.StartVmAsync(id);
        await Eventually.TrueAsync(() => Serial(running).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal), Boot, "the guest booted on the source");
        var sourcePid = (int)running.Pid!.Value;

        var moved = await VmMigration.MigrateAsync(_source.Client, _target.Client, id, online: true, TimeSpan.FromMinutes(5), CancellationToken.None);

        Assert.Equal(id, moved.VmId);
        Assert.Equal("running", moved.Status);
        var onTarget = (await _target.Client.GetVmAsync(id)).Value;
        Assert.Equal("running", onTarget.Status);
        Assert.Equal(running.Name, onTarget.Name);
        Assert.True(await HoldsAsync(Disk(_target, id), 0xab), "the disk content arrived on the target");
        // The guest's memory came along: the target's QEMU never booted a kernel (its serial log stays free of a boot).
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal("running", (await _target.Client.GetVmAsync(id)).Value.Status);
        Assert.DoesNotContain("Linux version", Serial(onTarget), StringComparison.Ordinal);
        // Nothing stays on the source: no VM, no QEMU, no disk.
        Assert.Null(await _source.Client.FindVmAsync(id));
        Assert.False(ProcessTable.IsAlive(sourcePid) && ProcessTable.ReadCommandLine(sourcePid).Any(a => a.Contains(_source.RunDir, StringComparison.Ordinal)), "the source QEMU is gone");
        Assert.False(File.Exists(Disk(_source, id)));
        // The VM is an ordinary VM on the target: it stops and deletes.
        await _target.Client.DeleteVmAsync(id, RunningVmDeletion.Force);
        Assert.False(File.Exists(Disk(_target, id)));
    }

    [Fact]
    public async Task AStoppedUefiVmMovesColdWithItsDiskAndEfiVarsAndStaysStopped()
    {
        var id = NewId();
        var spec = KernelGuest(id, power: "stopped");
        spec.Firmware = new FirmwareSpec { Type = "uefi" };
        spec.Disks!["virtio1"] = new DiskSpec { SizeGib = 2, Format = "raw" };
        await _source.Client.CreateVmAsync(spec);
        await WriteAsync(Disk(_source, id), 0x5a, "1M");
        var raw = Path.Combine(Pool(_source), $"vm-{id}-disk-virtio1.raw");
        Assert.True((await RunAsync("qemu-io", "-f", "raw", "-c", "write -P 0x33 0 64k", raw)).Ok);
        var efi = await File.ReadAllBytesAsync(EfiVars(_source, id));

        var moved = await VmMigration.MigrateAsync(_source.Client, _target.Client, id, online: true, TimeSpan.FromMinutes(5), CancellationToken.None);

        Assert.Equal("stopped", moved.Status);
        Assert.True(await HoldsAsync(Disk(_target, id), 0x5a, "1M"));
        var rawTarget = Path.Combine(Pool(_target), $"vm-{id}-disk-virtio1.raw");
        var read = await RunAsync("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x33 0 64k", rawTarget);
        Assert.True(read.Ok && !read.StdOut.Contains("failed", StringComparison.Ordinal), read.StdOut);
        Assert.Equal(2L << 30, new FileInfo(rawTarget).Length);
        Assert.Equal(efi, await File.ReadAllBytesAsync(EfiVars(_target, id)));
        Assert.Null(await _source.Client.FindVmAsync(id));
        Assert.False(File.Exists(Disk(_source, id)));
        Assert.False(File.Exists(raw));
        Assert.False(File.Exists(EfiVars(_source, id)));
        // Not locked any more: it starts on the target like any VM.
        Assert.Equal("running", (await _target.Client.StartVmAsync(id)).Status);
        await _target.Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    [Fact]
    public async Task ARefusedMigrationChangesNothingOnEitherHost()
    {
        // vm_id taken on the target.
        var id = NewId();
        await _source.Client.CreateVmAsync(KernelGuest(id, power: "stopped"));
        var other = KernelGuest(id, power: "stopped");
        other.Disks = null;
        await _target.Client.CreateVmAsync(other);
        var sourceBefore = _source.Listing();
        var targetBefore = _target.Listing();
        var taken = await Assert.ThrowsAsync<KvmApiException>(() => VmMigration.MigrateAsync(_source.Client, _target.Client, id, online: true, null, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Conflict, taken.Status);
        Assert.Contains("taken", taken.Message, StringComparison.Ordinal);
        Assert.Equal(sourceBefore, _source.Listing());
        Assert.Equal(targetBefore, _target.Listing());
        // The source VM is not left locked: it starts and stops at once.
        Assert.Equal("running", (await _source.Client.StartVmAsync(id)).Status);
        await _source.Client.StopVmAsync(id);

        // A TPM is not carried: the source refuses before anything happens, with the attribute path.
        var tpmId = NewId();
        var withTpm = KernelGuest(tpmId, power: "stopped");
        withTpm.Tpm = new TpmSpec();
        await _source.Client.CreateVmAsync(withTpm);
        sourceBefore = _source.Listing();
        var refused = await Assert.ThrowsAsync<KvmApiException>(() => VmMigration.MigrateAsync(_source.Client, _target.Client, tpmId, online: true, null, CancellationToken.None));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.Status);
        Assert.Contains(refused.Errors, e => e.Attribute == "tpm");
        Assert.Equal(sourceBefore, _source.Listing());
        Assert.Null(await _target.Client.FindVmAsync(tpmId));

        // A bridge the target does not have.
        var netId = NewId();
        var bridged = KernelGuest(netId, power: "stopped");
        bridged.NetworkInterfaces = new() { ["net0"] = new NicSpec { Bridge = "kvmnobr" + netId % 1000 } };
        var plan = new MigrationPlan { VmId = netId, Spec = bridged, Online = false, Disks = new() { ["scsi0"] = new MigrationDisk { Format = "qcow2", VirtualSize = 1L << 30 } } };
        targetBefore = _target.Listing();
        var noBridge = await Assert.ThrowsAsync<KvmApiException>(() => _target.Client.CreateIncomingMigrationAsync(plan));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, noBridge.Status);
        Assert.Contains(noBridge.Errors, e => e.Attribute == "network_interfaces[\"net0\"].bridge");
        Assert.Equal(targetBefore, _target.Listing());
    }

    [Fact]
    public async Task AnAbortedLiveMigrationLeavesNothingOnTheTargetAndTheSourceRunsOn()
    {
        var id = NewId();
        var created = (await _source.Client.CreateVmAsync(KernelGuest(id))).Value;
        await Eventually.TrueAsync(() => Serial(created).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal), Boot, "the guest booted on the source");
        var targetBefore = _target.Listing();

        var plan = await _source.Client.PrepareMigrationAsync(id, online: true);
        Assert.True(plan.Online);
        // While prepared, the VM is locked on the source: other operations are refused as busy, not queued forever.
        var incoming = await _target.Client.CreateIncomingMigrationAsync(plan);
        Assert.Equal("127.0.0.1", incoming.Address);
        Assert.True(incoming.MigrationPort > 0);
        Assert.Equal("drive-scsi0", incoming.Exports["scsi0"]);
        var waiting = (await _target.Client.GetVmAsync(id)).Value;
        Assert.Equal("paused", waiting.Status); // QEMU waits for the stream (-incoming defer)
        var incomingPid = (int)waiting.Pid!.Value;
        Assert.Contains("-incoming", ProcessTable.ReadCommandLine(incomingPid));
        var busy = await Assert.ThrowsAsync<KvmApiException>(() => _target.Client.StartVmAsync(id));
        Assert.Equal(HttpStatusCode.Conflict, busy.Status);

        await _target.Client.AbortIncomingMigrationAsync(id);
        await _source.Client.CancelMigrationAsync(id);

        Assert.Null(await _target.Client.FindVmAsync(id));
        Assert.False(ProcessTable.IsAlive(incomingPid) && ProcessTable.ReadCommandLine(incomingPid).Any(a => a.Contains(_target.RunDir, StringComparison.Ordinal)));
        Assert.Equal(targetBefore, _target.Listing().Where(p => !p.Contains("/logs/", StringComparison.Ordinal) && !p.EndsWith("/logs/", StringComparison.Ordinal) && !p.Contains("/migrations/", StringComparison.Ordinal) && !p.EndsWith("/migrations/", StringComparison.Ordinal)).ToList());
        Assert.False(File.Exists(Disk(_target, id)));
        var source = (await _source.Client.GetVmAsync(id)).Value;
        Assert.Equal("running", source.Status);
        Assert.Equal(created.Pid, source.Pid);
        // Unlocked again.
        await _source.Client.StopVmAsync(id);
    }

    [Fact]
    public async Task ARunningVmWithOnlineFalseIsShutDownCopiedColdAndStartedOnTheTarget()
    {
        var id = NewId();
        var spec = KernelGuest(id);
        spec.UpdatePolicy = new UpdatePolicySpec { ShutdownTimeoutSeconds = 1 }; // the test guest ignores ACPI: stopped by force after 1 s
        var created = (await _source.Client.CreateVmAsync(spec)).Value;
        Assert.Equal("running", created.Status);

        var moved = await VmMigration.MigrateAsync(_source.Client, _target.Client, id, online: false, TimeSpan.FromMinutes(5), CancellationToken.None);

        Assert.Equal("running", moved.Status); // started again on the target: a fresh boot there
        await Eventually.TrueAsync(() => Serial(moved).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal), Boot, "the guest booted on the target");
        Assert.Null(await _source.Client.FindVmAsync(id));
        Assert.False(File.Exists(Disk(_source, id)));
        await _target.Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    [Fact]
    public async Task AnIncomingMigrationLeftByARestartedTargetAgentIsRemovedAndTheSourceKeepsItsVm()
    {
        var id = NewId();
        var created = (await _source.Client.CreateVmAsync(KernelGuest(id))).Value;
        var plan = await _source.Client.PrepareMigrationAsync(id, online: true);
        var incoming = await _target.Client.CreateIncomingMigrationAsync(plan);
        var incomingPid = (int)(await _target.Client.GetVmAsync(id)).Value.Pid!.Value;
        Assert.True(File.Exists(Disk(_target, id)));

        // The target agent goes away mid-migration (its QEMU outlives it) and comes back.
        var root = _target.Root;
        await _target.StopAgentOnlyAsync();
        _target = await TestAgent.RestartOnAsync(root);

        Assert.Null(await _target.Client.FindVmAsync(id));
        await Eventually.TrueAsync(() => !ProcessTable.IsAlive(incomingPid) || ProcessTable.ReadState(incomingPid) == 'Z', TimeSpan.FromSeconds(10), "the incoming QEMU is gone");
        Assert.False(File.Exists(Disk(_target, id)));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_target.DataDir, "migrations")));
        // The source gets its VM back.
        await _source.Client.CancelMigrationAsync(id);
        var source = (await _source.Client.GetVmAsync(id)).Value;
        Assert.Equal("running", source.Status);
        Assert.Equal(created.Pid, source.Pid);
        _ = incoming;
        await _source.Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    [Fact]
    public void ATargetsQemuStartsPausedAndWaitsForTheStream() =>
        Assert.Equal(["qemu-system-x86_64", "-name", "guest=x", "-S", "-incoming", "defer"],
            Kvm.Agent.Qemu.QemuCommand.WithIncoming(["qemu-system-x86_64", "-name", "guest=x"]));

    [Fact]
    public async Task EveryBlockTheGuestWritesWhileItMovesLiveArrivesOnTheTarget()
    {
        const int Blocks = 1500;
        var id = NewId();
        var spec = KernelGuest(id);
        spec.SerialPorts = new() { ["serial0"] = new SerialPortSpec { Type = "socket" } }; // the console takes input; the serial log still records it
        var vm = (await _source.Client.CreateVmAsync(spec)).Value;
        await Eventually.TrueAsync(() => Serial(vm).Contains("KVM-TEST-GUEST-DISK sda", StringComparison.Ordinal) && Serial(vm).Contains("Welcome", StringComparison.Ordinal), Boot, "the guest's shell");
        using (var terminal = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified))
        {
            await terminal.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(_source.RunDir, id.ToString(CultureInfo.InvariantCulture), "serial0.sock")));
            await Task.Delay(500);
            // Block i gets "blk<i>", each write flushed to the disk; the loop outlasts the migration and ends on the target.
            // Typed slowly: the emulated UART and ash's line editor under TCG drop a long burst.
            var command = $"i=0;while [ $i -lt {Blocks} ];do printf blk%05d $i|dd of=/dev/sda bs=512 seek=$i conv=fsync 2>/dev/null;i=$((i+1));done;echo DONE-$((40+2))\n";
            foreach (var chunk in command.Chunk(8))
            {
                await terminal.SendAsync(System.Text.Encoding.ASCII.GetBytes(chunk));
                await Task.Delay(60);
            }
            // Writing has begun when block 20 holds its text on the source's disk.
            await Eventually.TrueAsync(async () => (await RunAsync("qemu-io", "-U", "-r", "-f", "qcow2", "-c", "read -P 0x62 10240 1", Disk(_source, id))) is { Ok: true } r
                && !r.StdOut.Contains("Pattern verification failed", StringComparison.Ordinal), Boot, "the guest writes its blocks:\n" + Serial(vm));
        }

        var moved = await VmMigration.MigrateAsync(_source.Client, _target.Client, id, online: true, TimeSpan.FromMinutes(5), CancellationToken.None);

        // The loop ends on the target: it was running when the VM switched hosts.
        await Eventually.TrueAsync(() => Serial(moved).Contains("DONE-42", StringComparison.Ordinal), TimeSpan.FromMinutes(3), "the guest finished its writes on the target");
        var raw = Path.Combine(_target.Root, "check.raw");
        var convert = await RunAsync("qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", Disk(_target, id), raw);
        Assert.True(convert.Ok, convert.StdErr);
        var bytes = new byte[Blocks * 512];
        await using (var file = File.OpenRead(raw))
            await file.ReadExactlyAsync(bytes);
        var missing = Enumerable.Range(0, Blocks)
            .Where(i => System.Text.Encoding.ASCII.GetString(bytes, i * 512, 8) != $"blk{i:00000}").ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} blocks lost, first {string.Join(", ", missing.Take(10))}");
        await _target.Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }

    [Fact]
    public async Task TurningMigrationOnOrOffIsStoredLiveWithoutARestart()
    {
        var id = NewId();
        var spec = KernelGuest(id);
        spec.Migration = null;
        var vm = (await _source.Client.CreateVmAsync(spec)).Value;
        var current = await _source.Client.GetVmAsync(id);
        var changed = current.Value.ToSpec();
        changed.Migration = new MigrationSpec { Enabled = true, Online = false };
        var result = (await _source.Client.UpdateVmAsync(id, changed, current.ETag)).Value;
        Assert.All(result.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));
        Assert.Null(result.Vm.PendingChanges);
        Assert.Equal(vm.Pid, result.Vm.Pid);
        Assert.True(result.Vm.Migration?.Enabled);
        // The same holds for autostart, the other agent-side metadata block (it was reported pending before, so a provider restarted the VM).
        current = await _source.Client.GetVmAsync(id);
        changed = current.Value.ToSpec();
        changed.Autostart = new AutostartSpec { Enabled = true };
        result = (await _source.Client.UpdateVmAsync(id, changed, current.ETag)).Value;
        Assert.All(result.Changes, c => Assert.Equal(AppliedChange.Live, c.Outcome));
        Assert.Null(result.Vm.PendingChanges);
        await _source.Client.DeleteVmAsync(id, RunningVmDeletion.Force);
    }
}
