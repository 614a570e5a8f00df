using Kvm.Agent.Cgroups;
using Kvm.Model;

namespace Kvm.Agent.Tests.Cgroups;

/// <summary>
/// The cgroup writes against temp directories laid out like cgroup v2 (unified) and v1 (one hierarchy per controller).
/// This machine runs v1; the real-kernel proof is CpuMemoryLiveTests. Production hosts usually run v2, whose files these
/// tests pin.
/// </summary>
public sealed class VmCgroupsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cg-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Read(params string[] parts) => File.ReadAllText(Path.Join([_root, .. parts]));

    [Fact]
    public void V2WritesCpuMaxWeightAndCpusetAndMovesTheProcess()
    {
        File.WriteAllText(Path.Join(_root, "cgroup.controllers"), "cpuset cpu io memory pids\n");
        var cgroups = new VmCgroups(_root, "kvm.slice");
        Assert.Equal(CgroupVersion.V2, cgroups.Version);

        cgroups.Apply(101, 4242, new CpuSpec { Limit = 1.5, Weight = 300, Affinity = "0-1,3" });
        Assert.Equal("150000 100000", Read("kvm.slice", "vm-101", "cpu.max"));
        Assert.Equal("300", Read("kvm.slice", "vm-101", "cpu.weight"));
        Assert.Equal("0-1,3", Read("kvm.slice", "vm-101", "cpuset.cpus"));
        Assert.Equal("4242", Read("kvm.slice", "vm-101", "cgroup.procs"));
        // Controllers are enabled for the children of the root and of the parent.
        Assert.Contains("+cpu", Read("cgroup.subtree_control"), StringComparison.Ordinal);
        Assert.Contains("+cpuset", Read("kvm.slice", "cgroup.subtree_control"), StringComparison.Ordinal);
        Assert.Equal([Path.Join(_root, "kvm.slice", "vm-101")], cgroups.DirectoriesOf(101));

        // Unset values go back to the defaults: no limit, weight 100, the parent's CPUs.
        cgroups.Apply(101, 4242, new CpuSpec());
        Assert.Equal("max 100000", Read("kvm.slice", "vm-101", "cpu.max"));
        Assert.Equal("100", Read("kvm.slice", "vm-101", "cpu.weight"));
        Assert.Equal("\n", Read("kvm.slice", "vm-101", "cpuset.cpus"));
    }

    [Fact]
    public void V1WritesQuotaSharesAndACpusetWithMemsCopiedFromItsParents()
    {
        Directory.CreateDirectory(Path.Join(_root, "cpu"));
        File.WriteAllText(Path.Join(_root, "cpu", "cpu.cfs_quota_us"), "-1");
        Directory.CreateDirectory(Path.Join(_root, "cpuset"));
        File.WriteAllText(Path.Join(_root, "cpuset", "cpuset.cpus"), "0-7\n");
        File.WriteAllText(Path.Join(_root, "cpuset", "cpuset.mems"), "0-1\n");
        var cgroups = new VmCgroups(_root, "kvm.slice");
        Assert.Equal(CgroupVersion.V1, cgroups.Version);

        cgroups.Apply(7, 99, new CpuSpec { Limit = 0.5, Weight = 50 });
        Assert.Equal("100000", Read("cpu", "kvm.slice", "vm-7", "cpu.cfs_period_us"));
        Assert.Equal("50000", Read("cpu", "kvm.slice", "vm-7", "cpu.cfs_quota_us"));
        Assert.Equal("512", Read("cpu", "kvm.slice", "vm-7", "cpu.shares"));
        Assert.Equal("99", Read("cpu", "kvm.slice", "vm-7", "cgroup.procs"));
        Assert.Equal("0-7", Read("cpuset", "kvm.slice", "cpuset.cpus"));
        Assert.Equal("0-1", Read("cpuset", "kvm.slice", "vm-7", "cpuset.mems"));
        Assert.Equal("0-7", Read("cpuset", "kvm.slice", "vm-7", "cpuset.cpus"));

        cgroups.Apply(7, 99, new CpuSpec { Affinity = "2,4" });
        Assert.Equal("-1", Read("cpu", "kvm.slice", "vm-7", "cpu.cfs_quota_us"));
        Assert.Equal("1024", Read("cpu", "kvm.slice", "vm-7", "cpu.shares"));
        Assert.Equal("2,4", Read("cpuset", "kvm.slice", "vm-7", "cpuset.cpus"));
    }

    [Fact]
    public void WithoutACpuControllerTheFailureNamesTheSetting()
    {
        var cgroups = new VmCgroups(_root, "kvm.slice");
        Assert.Equal(CgroupVersion.None, cgroups.Version);
        var e = Assert.Throws<CgroupException>(() => cgroups.Apply(1, 1, new CpuSpec { Weight = 10 }));
        Assert.Equal("cpu.weight", e.Attribute);
        Assert.True(cgroups.Remove(1));
    }

    [Theory]
    [InlineData(null, -1L)]
    [InlineData(0.0, -1L)]
    [InlineData(0.001, 1000L)] // the kernel's minimum quota
    [InlineData(2.5, 250000L)]
    [InlineData(128.0, 12800000L)]
    public void QuotaIsTheLimitTimesThePeriod(double? limit, long quota) => Assert.Equal(quota, VmCgroups.QuotaFor(limit));

    [Theory]
    [InlineData(100, 1024L)]
    [InlineData(1, 10L)]
    [InlineData(10000, 102400L)]
    public void SharesScaleTheWeightSoTheDefaultsMatch(int weight, long shares) => Assert.Equal(shares, VmCgroups.SharesFor(weight));
}
