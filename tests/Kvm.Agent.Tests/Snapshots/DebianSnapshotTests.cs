using Kvm.Agent.GuestAgent;
using Kvm.Agent.Tests.GuestAgent;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;
using Xunit.Abstractions;

namespace Kvm.Agent.Tests.Snapshots;

/// <summary>
/// Snapshots of the real Debian test guest under TCG (one boot, about a minute): a disks-only snapshot freezes the guest's file
/// systems through its guest agent, and rolling a running VM back to a memory snapshot returns both what the guest held only in
/// memory (a tmpfs file) and what it had written to disk.
/// </summary>
[Collection("qemu")]
public sealed class DebianSnapshotTests(ITestOutputHelper output) : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    [Fact]
    public async Task TheGuestIsFrozenForDiskSnapshotsAndAMemoryRollbackReturnsItsMemoryAndDisk()
    {
        var client = _agent.Client;
        var image = (await client.CreateImageAsync(new ImageSpec { Name = "debian-guest.qcow2", SourcePath = DebianGuest.Disk })).Value;
        var spec = DebianGuest.Spec(Specs.UniqueName("debsnap"), image.ImageId!);
        spec.Agent = new AgentSpec { Enabled = true };
        var vm = (await client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;
        var guest = new GuestAgents(new AgentOptions { RunDir = _agent.RunDir });
        var booted = await Eventually.TrueAsync(() => guest.PingAsync(id), TimeSpan.FromMinutes(5), "the guest agent answering");
        output.WriteLine($"boot to guest agent: {booted.TotalSeconds:0} s");

        async Task<string> Sh(string script)
        {
            var result = await guest.ExecAsync(id, "/bin/sh", ["-c", script], TimeSpan.FromSeconds(60));
            Assert.True(result.ExitCode == 0, result.StdErr);
            return result.StdOut.Trim();
        }

        await Sh("echo A > /dev/shm/marker && echo A > /root/marker && sync");

        // Disks only, while running, with the guest agent: frozen around the QMP transaction, thawed after.
        var frozen = (await client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "fs" })).Value;
        Assert.True(frozen.FsFrozen, "the guest's file systems were frozen for the snapshot");
        Assert.Equal("thawed", await guest.FreezeStatusAsync(id));

        var saved = (await client.CreateSnapshotAsync(id, new SnapshotSpec { Name = "mem", IncludeMemory = true })).Value;
        output.WriteLine($"memory state: {saved.VmStateBytes} bytes");
        Assert.True(saved.VmStateBytes > 0);
        Assert.False(saved.FsFrozen); // memory snapshots need no freeze: the guest is stopped while its state is saved

        await Sh("echo B > /dev/shm/marker && echo B > /root/marker && sync");
        Assert.Equal("B", await Sh("cat /dev/shm/marker"));

        // Rollback of the running VM: QEMU loads the state; the same QEMU runs on with the guest's memory and disk as saved.
        var rolled = await client.RollbackSnapshotAsync(id, "mem");
        Assert.Equal("running", rolled.Status);
        Assert.Equal(vm.Pid, rolled.Pid);
        await Eventually.TrueAsync(() => guest.PingAsync(id), TimeSpan.FromMinutes(1), "the guest agent after the rollback");
        Assert.Equal("A", await Sh("cat /dev/shm/marker"));
        Assert.Equal("A", await Sh("cat /root/marker"));

        await client.DeleteVmAsync(id, RunningVmDeletion.Force);
        await client.DeleteImageAsync("default", "debian-guest.qcow2");
    }
}
