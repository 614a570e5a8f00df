using System.Globalization;
using System.Text.Json.Nodes;
using Kvm.Agent.Cgroups;
using Kvm.Agent.Tests.Support;
using Kvm.Agent.Vms;
using Kvm.Client;
using Kvm.Model;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.Vms;

/// <summary>
/// Real agent, real QEMU (TCG): cpu.limit, cpu.weight and cpu.affinity through the VM's cgroup on this host's real
/// hierarchy (read back from the cgroup files and the process's Cpus_allowed_list), vCPU hot-plug into a running
/// kernel guest, and memory (DIMM) hot-plug, each applied live without restarting QEMU (same PID).
/// </summary>
[Collection("qemu")]
public sealed class CpuMemoryLiveTests : IAsyncLifetime
{
    private const string CgroupRoot = "/sys/fs/cgroup";
    private static readonly CgroupVersion Version = VmCgroups.Detect(CgroupRoot);
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    private VmMonitor Monitor(long id) => _agent.Host.Services.GetRequiredService<VmRuntime>().MonitorOf(id)!;

    private string CpuDir(long id) => Version == CgroupVersion.V2
        ? Path.Join(CgroupRoot, _agent.CgroupParent, "vm-" + id)
        : Path.Join(CgroupRoot, "cpu", _agent.CgroupParent, "vm-" + id);

    private string CpusetDir(long id) => Version == CgroupVersion.V2
        ? CpuDir(id)
        : Path.Join(CgroupRoot, "cpuset", _agent.CgroupParent, "vm-" + id);

    private static string Read(string dir, string file) => File.ReadAllText(Path.Join(dir, file)).Trim();

    /// <summary>(quota, weight, cpus) as the kernel shows them: cfs_quota_us / cpu.shares on v1, cpu.max / cpu.weight on v2.</summary>
    private (string Quota, string Weight, string Cpus) Cgroup(long id) => Version == CgroupVersion.V2
        ? (Read(CpuDir(id), "cpu.max"), Read(CpuDir(id), "cpu.weight"), Read(CpusetDir(id), "cpuset.cpus.effective"))
        : (Read(CpuDir(id), "cpu.cfs_quota_us"), Read(CpuDir(id), "cpu.shares"), Read(CpusetDir(id), "cpuset.cpus"));

    private static string CpusAllowed(int pid) =>
        File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split('\t')[^1].Trim();

    /// <summary>Every thread of the QEMU process (vCPU threads, iothreads, the main loop) is in the VM's cgroups.</summary>
    private void AssertAllThreadsIn(long id, int pid)
    {
        var threads = Directory.EnumerateDirectories($"/proc/{pid}/task").Select(t => Path.GetFileName(t)!).ToHashSet();
        foreach (var dir in new[] { CpuDir(id), CpusetDir(id) }.Distinct())
        {
            var members = File.ReadAllLines(Path.Join(dir, Version == CgroupVersion.V2 ? "cgroup.threads" : "tasks")).ToHashSet();
            Assert.Subset(threads, members);
        }
    }

    private static string HostCpus() => Version == CgroupVersion.V2
        ? Read(CgroupRoot, "cpuset.cpus.effective")
        : Read(Path.Join(CgroupRoot, "cpuset"), "cpuset.cpus");

    [Fact]
    public async Task CpuLimitWeightAndAffinityApplyLiveThroughTheVmCgroupAndGoWithTheVm()
    {
        Assert.NotEqual(CgroupVersion.None, Version);
        var created = await Client.CreateVmAsync(Specs.Running());
        var id = created.Value.VmId!.Value;
        var pid = (int)created.Value.Pid!.Value;
        Assert.False(Directory.Exists(CpuDir(id)), "a VM without cpu.limit/weight/affinity gets no cgroup");

        var spec = created.Value.ToSpec();
        spec.Cpu = new CpuSpec { Limit = 0.5, Weight = 200, Affinity = "0" };
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        foreach (var attribute in new[] { "cpu.limit", "cpu.weight", "cpu.affinity" })
            Assert.Contains(new AppliedChange(attribute, AppliedChange.Live), updated.Changes);
        Assert.Equal(pid, (int)updated.Vm.Pid!.Value);
        Assert.Null(updated.Vm.PendingChanges);
        Assert.Equal(Version == CgroupVersion.V2 ? ("50000 100000", "200", "0") : ("50000", "2048", "0"), Cgroup(id));
        Assert.Equal("0", CpusAllowed(pid));
        AssertAllThreadsIn(id, pid);

        spec.Cpu = new CpuSpec { Limit = 1.25, Weight = 50, Affinity = "1" };
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Equal(pid, (int)updated.Vm.Pid!.Value);
        Assert.Equal(Version == CgroupVersion.V2 ? ("125000 100000", "50", "1") : ("125000", "512", "1"), Cgroup(id));
        Assert.Equal("1", CpusAllowed(pid));

        // Unset again: no limit, the default weight, every host CPU.
        spec.Cpu = null;
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Equal(pid, (int)updated.Vm.Pid!.Value);
        Assert.Equal(Version == CgroupVersion.V2 ? ("max 100000", "100", HostCpus()) : ("-1", "1024", HostCpus()), Cgroup(id));
        Assert.Equal(HostCpus(), CpusAllowed(pid));

        await Client.StopVmAsync(id);
        Assert.False(Directory.Exists(CpuDir(id)));
        Assert.False(Directory.Exists(CpusetDir(id)));

        // Set before the start: QEMU is moved in as it starts.
        spec.Cpu = new CpuSpec { Limit = 0.25, Affinity = "1" };
        spec.PowerState = "running";
        var started = (await Client.UpdateVmAsync(id, spec)).Value.Vm;
        var newPid = (int)started.Pid!.Value;
        Assert.Contains(newPid.ToString(CultureInfo.InvariantCulture), File.ReadAllLines(Path.Join(CpuDir(id), "cgroup.procs")));
        Assert.Equal(Version == CgroupVersion.V2 ? "25000 100000" : "25000", Cgroup(id).Quota);
        Assert.Equal("1", CpusAllowed(newPid));
        AssertAllThreadsIn(id, newPid);

        await Client.DeleteVmAsync(id, RunningVmDeletion.ShutDown, TimeSpan.FromSeconds(1));
        Assert.False(Directory.Exists(CpuDir(id)));
        Assert.False(Directory.Exists(CpusetDir(id)));
    }

    [Fact]
    public async Task AnAffinityOnACpuTheHostLacksIsRefusedNamingTheAttribute()
    {
        var spec = Specs.Running();
        spec.Cpu = new CpuSpec { Affinity = "0-63" };
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(spec));
        Assert.True(e.Errors.Any(err => err.Attribute == "cpu.affinity"), e.Message + " " + string.Join("; ", e.Errors.Select(x => x.Attribute + ": " + x.Detail)));
    }

    [Fact]
    public async Task MemoryGrowsLiveByPluggingDimmsAndAShrinkWaitsForTheNextStart()
    {
        var spec = Specs.Running();
        spec.Hotplug = ["memory"];
        spec.Memory = new MemorySpec { SizeMib = 128, HotplugMaxMib = 512 };
        var created = await Client.CreateVmAsync(spec);
        var id = created.Value.VmId!.Value;
        var pid = created.Value.Pid!.Value;

        spec = created.Value.ToSpec();
        spec.Memory!.SizeMib = 256;
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        Assert.Contains(new AppliedChange("memory.size_mib", AppliedChange.Live), updated.Changes);
        Assert.Equal(pid, updated.Vm.Pid);
        spec.Memory.SizeMib = 384;
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Contains(new AppliedChange("memory.size_mib", AppliedChange.Live), updated.Changes);

        var dimms = (JsonArray)(await Monitor(id).ExecuteAsync("query-memory-devices"))!;
        Assert.Equal([("dimm0", 128L * 1024 * 1024), ("dimm1", 128L * 1024 * 1024)],
            dimms.Select(d => (d!["data"]!["id"]!.GetValue<string>(), d["data"]!["size"]!.GetValue<long>())).ToList());
        var summary = (await Monitor(id).ExecuteAsync("query-memory-size-summary"))!;
        Assert.Equal(128L * 1024 * 1024, summary["base-memory"]!.GetValue<long>());
        Assert.Equal(256L * 1024 * 1024, summary["plugged-memory"]!.GetValue<long>());

        // Shrinking and growing past hotplug_max_mib cannot happen live: pending until the next start.
        spec.Memory.SizeMib = 200;
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Contains(new AppliedChange("memory.size_mib", AppliedChange.Pending), updated.Changes);
        Assert.Equal(["memory.size_mib"], updated.Vm.PendingChanges);
        Assert.Equal(pid, updated.Vm.Pid);

        await Client.DeleteVmAsync(id, RunningVmDeletion.ShutDown, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task WithoutHotplugMaxAMemoryChangeWaitsForTheNextStart()
    {
        var created = await Client.CreateVmAsync(Specs.Running());
        var id = created.Value.VmId!.Value;
        var spec = created.Value.ToSpec();
        spec.Memory!.SizeMib = 96;
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        Assert.Contains(new AppliedChange("memory.size_mib", AppliedChange.Pending), updated.Changes);
        Assert.Equal(created.Value.Pid, updated.Vm.Pid);
        await Client.DeleteVmAsync(id, RunningVmDeletion.ShutDown, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task VcpusArePluggedIntoARunningKernelGuestAndUnpluggedAgain()
    {
        var spec = new VmSpec
        {
            Name = Specs.UniqueName("vcpu"),
            Memory = new MemorySpec { SizeMib = 256 },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            Cpu = new CpuSpec { Cores = 2, Vcpus = 1 },
            Hotplug = ["cpu"],
            Kernel = TestGuest.Kernel,
            Initrd = TestGuest.Initrd,
            Cmdline = "console=ttyS0 panic=-1",
        };
        var created = await Client.CreateVmAsync(spec);
        var vm = created.Value;
        var id = vm.VmId!.Value;
        var pid = (int)vm.Pid!.Value;
        await Eventually.TrueAsync(() => File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal),
            TimeSpan.FromSeconds(90), "the guest's boot marker");
        Assert.Contains("cpus=1 ", await File.ReadAllTextAsync(vm.SerialLog!), StringComparison.Ordinal);
        Assert.Equal(1, await OnlineVcpusAsync(id));

        spec = vm.ToSpec();
        spec.Cpu!.Vcpus = 2;
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        Assert.Contains(new AppliedChange("cpu.vcpus", AppliedChange.Live), updated.Changes);
        Assert.Equal(pid, (int)updated.Vm.Pid!.Value);
        Assert.Equal(2, await OnlineVcpusAsync(id));
        // QEMU names its vCPU threads (debug-threads=on): the plugged vCPU has its own.
        Assert.Contains("CPU 1/TCG", VcpuThreads(pid));

        spec.Cpu.Vcpus = 1;
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Contains(new AppliedChange("cpu.vcpus", AppliedChange.Live), updated.Changes);
        Assert.Equal(1, await OnlineVcpusAsync(id));
        Assert.Equal(pid, (int)updated.Vm.Pid!.Value);

        await Client.DeleteVmAsync(id, RunningVmDeletion.ShutDown, TimeSpan.FromSeconds(1));
    }

    /// <summary>
    /// The balloon with a real guest driver (the Debian guest; about a minute under TCG): a live balloon.min_mib makes the
    /// guest give memory back, and memory.shares hands the VM to the auto-balloon loop, which (the host being under 80 %)
    /// sets the target back to the full size.
    /// </summary>
    [Fact]
    public async Task TheBalloonTargetAppliesLiveAndAutoBallooningGivesMemoryBackOnAnIdleHost()
    {
        var image = (await Client.CreateImageAsync(new ImageSpec { Name = "deb-balloon.qcow2", SourcePath = GuestAgent.DebianGuest.Disk })).Value;
        var spec = new VmSpec
        {
            Name = Specs.UniqueName("balloon"),
            Memory = new MemorySpec { SizeMib = 1024 },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            Kernel = GuestAgent.DebianGuest.Kernel,
            Initrd = GuestAgent.DebianGuest.Initrd,
            Cmdline = GuestAgent.DebianGuest.Cmdline,
            Disks = new() { ["virtio0"] = new DiskSpec { ImageId = image.ImageId, LinkedClone = true } },
        };
        var created = await Client.CreateVmAsync(spec);
        var id = created.Value.VmId!.Value;
        var pid = created.Value.Pid;

        spec = created.Value.ToSpec();
        spec.Memory!.Balloon = new BalloonSpec { MinMib = 512 };
        var updated = (await Client.UpdateVmAsync(id, spec, created.ETag)).Value;
        Assert.Contains(new AppliedChange("memory.balloon.min_mib", AppliedChange.Live), updated.Changes);
        // The guest's virtio_balloon driver inflates once it is loaded during boot.
        await Eventually.TrueAsync(async () => await BalloonMibAsync(id) <= 520, TimeSpan.FromSeconds(300), "the guest giving memory back to 512 MiB");

        spec.Memory.Shares = 1000;
        updated = (await Client.UpdateVmAsync(id, spec)).Value;
        Assert.Contains(new AppliedChange("memory.shares", AppliedChange.Live), updated.Changes);
        var (total, used) = AutoBalloon.ReadHostMemory(await File.ReadAllTextAsync("/proc/meminfo"));
        Assert.True(used < total * AutoBalloonPolicy.Threshold, $"this test needs the host under 80 % memory use ({used} of {total} MiB)");
        await Eventually.TrueAsync(async () => await BalloonMibAsync(id) >= 1000, TimeSpan.FromSeconds(60), "the auto-balloon loop growing the VM to its full size");
        Assert.Equal(pid, (await Client.GetVmAsync(id)).Value.Pid);

        await Client.DeleteVmAsync(id, RunningVmDeletion.ShutDown, TimeSpan.FromSeconds(1));
    }

    private async Task<long> BalloonMibAsync(long id) =>
        (await Monitor(id).ExecuteAsync("query-balloon"))!["actual"]!.GetValue<long>() / (1024 * 1024);

    private async Task<int> OnlineVcpusAsync(long id) => ((JsonArray)(await Monitor(id).ExecuteAsync("query-cpus-fast"))!).Count;

    private static List<string> VcpuThreads(int pid) =>
        [.. Directory.EnumerateDirectories($"/proc/{pid}/task").Select(t => File.ReadAllText(Path.Join(t, "comm")).Trim()).Where(n => n.StartsWith("CPU ", StringComparison.Ordinal))];
}
