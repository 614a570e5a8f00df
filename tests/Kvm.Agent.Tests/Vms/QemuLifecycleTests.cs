using System.Net;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Vms;

/// <summary>Real QEMU (TCG, no guest OS) driven through the agent: lifecycle, crashes, and agent restarts.</summary>
[Collection("qemu")]
public sealed class QemuLifecycleTests : IAsyncLifetime
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(10);
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    [Fact]
    public async Task AVmRunsPausesResumesShutsDownAndIsDeletedWithoutResidue()
    {
        var created = (await Client.CreateVmAsync(Specs.Running())).Value;
        var id = created.VmId!.Value;
        Assert.Equal("running", created.Status);
        Assert.Equal("tcg", created.Accelerator);
        var pid = (int)created.Pid!.Value;
        Assert.True(ProcessTable.IsAlive(pid));
        // QEMU runs in its own session under its seccomp sandbox (possible because it is not daemonized).
        var status = await File.ReadAllTextAsync($"/proc/{pid}/status");
        Assert.Contains("Seccomp:\t2", status, StringComparison.Ordinal);
        Assert.Equal(pid.ToString(System.Globalization.CultureInfo.InvariantCulture), (await File.ReadAllTextAsync($"/proc/{pid}/stat")).Split(' ')[5]);

        Assert.Equal("paused", (await Client.SuspendVmAsync(id)).Status);
        Assert.Equal("paused", (await Client.GetVmAsync(id)).Value.Status);
        Assert.Equal("running", (await Client.ResumeVmAsync(id)).Status);
        Assert.Equal("running", (await Client.StartVmAsync(id)).Status); // already running is success

        // No guest OS answers ACPI: the bounded wait ends in a forced stop.
        var stopped = await Client.ShutdownVmAsync(id, TimeSpan.FromSeconds(1));
        Assert.Equal("stopped", stopped.Status);
        Assert.Null(stopped.Pid);
        Assert.False(ProcessTable.IsAlive(pid));
        Assert.False(Directory.Exists(Path.Combine(_agent.RunDir, id.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        Assert.Equal("stopped", (await Client.StopVmAsync(id)).Status); // already stopped is success

        var again = await Client.StartVmAsync(id);
        Assert.Equal("running", again.Status);
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.DeleteVmAsync(id));
        Assert.Equal(HttpStatusCode.Conflict, e.Status);
        await Client.DeleteVmAsync(id, RunningVmDeletion.ShutDown, TimeSpan.FromSeconds(1));

        Assert.False(ProcessTable.IsAlive((int)again.Pid!.Value));
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_agent.RunDir));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_agent.DataDir, "vms")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_agent.DataDir, "logs")));
        Assert.Null(await Client.FindVmAsync(id));
    }

    [Fact]
    public async Task AKilledQemuIsReportedCrashedWithinASecondAndStartsAgainOnTheSamePaths()
    {
        var vm = (await Client.CreateVmAsync(Specs.Running())).Value;
        var id = vm.VmId!.Value;
        var pid = (int)vm.Pid!.Value;

        ProcessTable.Signal(pid, Posix.SIGKILL);
        var took = await Eventually.TrueAsync(async () => (await Client.GetVmAsync(id)).Value.Status == "crashed", Soon, "status crashed");
        Assert.True(took < TimeSpan.FromSeconds(1.5), $"crash noticed after {took.TotalMilliseconds:0} ms");
        Assert.Null(ProcessTable.ReadState(pid)); // reaped: no zombie left behind

        var restarted = await Client.StartVmAsync(id);
        Assert.Equal("running", restarted.Status);
        Assert.NotEqual(pid, (int)restarted.Pid!.Value);
        await Client.StopVmAsync(id);
    }

    [Fact]
    public async Task AStoppedVmStartsWhenItsPowerStateSaysRunningAndLiveChangesApply()
    {
        var spec = Specs.Stopped();
        spec.Display = new DisplaySpec { Vga = "none", Vnc = false };
        spec.NetworkInterfaces = new() { ["net0"] = new NicSpec() };
        var created = await Client.CreateVmAsync(spec);
        var id = created.Value.VmId!.Value;
        Assert.Equal("stopped", created.Value.Status);
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));

        var running = created.Value.ToSpec();
        running.PowerState = "running";
        var started = await Client.UpdateVmAsync(id, running, created.ETag);
        Assert.Equal("running", started.Value.Vm.Status);
        Assert.Contains(new AppliedChange("power_state", AppliedChange.Live), started.Value.Changes);
        Assert.Equal(Kvm.Agent.Qemu.MacAddress.Generate(id, "net0"), started.Value.Vm.MacAddresses!["net0"]);

        var change = started.Value.Vm.ToSpec();
        change.Description = "live";
        change.NetworkInterfaces!["net0"].LinkUp = false;
        change.Cpu = new CpuSpec { Cores = 2 };
        var updated = (await Client.UpdateVmAsync(id, change, started.ETag)).Value;
        Assert.Contains(new AppliedChange("description", AppliedChange.Live), updated.Changes);
        Assert.Contains(new AppliedChange("network_interfaces[\"net0\"].link_up", AppliedChange.Live), updated.Changes);
        Assert.Contains(new AppliedChange("cpu.cores", AppliedChange.Pending), updated.Changes);
        Assert.Equal(["cpu.cores"], updated.Vm.PendingChanges);
        Assert.Equal(started.Value.Vm.Pid, updated.Vm.Pid); // nothing restarted

        var stopped = updated.Vm.ToSpec();
        stopped.PowerState = "stopped";
        var result = (await Client.UpdateVmAsync(id, stopped, shutdownTimeout: TimeSpan.FromSeconds(1))).Value;
        Assert.Equal("stopped", result.Vm.Status);
        Assert.Null(result.Vm.PendingChanges);
    }

    [Fact]
    public async Task ARestartedAgentAdoptsRunningVmsWithoutRestartingThem()
    {
        var vms = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Client.CreateVmAsync(Specs.Running())));
        var pids = vms.ToDictionary(v => v.Value.VmId!.Value, v => (int)v.Value.Pid!.Value);
        var startTimes = pids.ToDictionary(p => p.Key, p => ProcessTable.ReadStartTime(p.Value));
        var stopped = (await Client.CreateVmAsync(Specs.Stopped())).Value.VmId!.Value;

        await _agent.StopAgentOnlyAsync();
        Assert.All(pids.Values, pid => Assert.True(ProcessTable.IsAlive(pid), $"QEMU {pid} died with the agent"));

        _agent = await TestAgent.RestartOnAsync(_agent.Root);
        var listed = await _agent.Client.ListVmsAsync();
        foreach (var (id, pid) in pids)
        {
            var vm = listed.Single(v => v.VmId == id);
            Assert.Equal("running", vm.Status);
            Assert.Equal(pid, (int)vm.Pid!.Value);
            Assert.Equal(startTimes[id], ProcessTable.ReadStartTime(pid));
        }
        Assert.Equal("stopped", listed.Single(v => v.VmId == stopped).Status);

        // The adopted VMs are fully managed: QMP works and a kill is still noticed.
        var first = pids.Keys.First();
        Assert.Equal("paused", (await _agent.Client.SuspendVmAsync(first)).Status);
        ProcessTable.Signal(pids[first], Posix.SIGKILL);
        await Eventually.TrueAsync(async () => (await _agent.Client.GetVmAsync(first)).Value.Status == "crashed", Soon, "adopted VM crash noticed");
    }

    [Fact]
    public async Task AQemuKilledWhileTheAgentWasDownIsNotAdopted()
    {
        var vm = (await Client.CreateVmAsync(Specs.Running())).Value;
        var id = vm.VmId!.Value;
        await _agent.StopAgentOnlyAsync();
        QemuReaper.Kill((int)vm.Pid!.Value); // the pidfile and socket stay behind, as after a real kill -9

        _agent = await TestAgent.RestartOnAsync(_agent.Root);
        var read = (await _agent.Client.GetVmAsync(id)).Value;
        Assert.Equal("stopped", read.Status);
        Assert.Null(read.Pid);
        Assert.Equal("running", (await _agent.Client.StartVmAsync(id)).Status);
    }

    [Fact]
    public async Task AnExplicitlyPausedVmStartsPaused()
    {
        var spec = Specs.Running();
        spec.PowerState = "paused";
        var vm = (await Client.CreateVmAsync(spec)).Value;
        Assert.Equal("paused", vm.Status);
        Assert.NotNull(vm.Pid);
        await Client.DeleteVmAsync(vm.VmId!.Value, RunningVmDeletion.Force);
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));
    }
}
