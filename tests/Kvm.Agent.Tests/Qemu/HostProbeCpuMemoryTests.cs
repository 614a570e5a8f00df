using Kvm.Agent.Host;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>Host capabilities for cpu.nested, memory.hugepages and KSM, from sysfs/procfs laid out in temp dirs (and the real one).</summary>
public sealed class HostProbeCpuMemoryTests : IDisposable
{
    private readonly string _sys = Directory.CreateTempSubdirectory("sys-").FullName;

    public void Dispose() => Directory.Delete(_sys, recursive: true);

    private void Write(string relative, string text)
    {
        var path = Path.Join(_sys, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    [Fact]
    public void NestedIsTheVendorFlagWhenTheModuleParameterIsOn()
    {
        Assert.Null(HostProbe.ProbeNested(_sys));
        Write("module/kvm_intel/parameters/nested", "N\n");
        Assert.Null(HostProbe.ProbeNested(_sys));
        Write("module/kvm_intel/parameters/nested", "Y\n");
        Assert.Equal("vmx", HostProbe.ProbeNested(_sys));
        File.Delete(Path.Join(_sys, "module/kvm_intel/parameters/nested"));
        Write("module/kvm_amd/parameters/nested", "1\n");
        Assert.Equal("svm", HostProbe.ProbeNested(_sys));
    }

    [Fact]
    public void HugetlbfsMountsAreKeyedByPageSize()
    {
        var mounts = HostProbe.ParseHugepageMounts("""
            proc /proc proc rw,nosuid 0 0
            hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
            hugetlbfs /run/hugepages/kvm/1048576kB hugetlbfs rw,relatime,pagesize=1024M 0 0
            hugetlbfs /mnt/other hugetlbfs rw,relatime 0 0
            """);
        Assert.Equal(new Dictionary<string, string> { ["2"] = "/dev/hugepages", ["1024"] = "/run/hugepages/kvm/1048576kB" }, mounts);
        Assert.Equal("/mnt/g", HostProbe.ParseHugepageMounts("none /mnt/g hugetlbfs rw,pagesize=1G 0 0")["1024"]);
    }

    [Fact]
    public void KsmStateIsNullWithoutKsmAndReadOtherwise()
    {
        Assert.Null(KsmState.Read(_sys));
        Write("kernel/mm/ksm/run", "1\n");
        Write("kernel/mm/ksm/pages_shared", "12\n");
        Write("kernel/mm/ksm/pages_sharing", "345\n");
        Assert.Equal(new KsmState(true, 12, 345, 0, 0), KsmState.Read(_sys));
    }

    [Fact]
    public void ThisHostsKsmIsReadFromTheRealSysfs()
    {
        // This machine has /sys/kernel/mm/ksm; a host without it reports null (covered above).
        if (!File.Exists("/sys/kernel/mm/ksm/run"))
            return;
        var state = KsmState.Read();
        Assert.NotNull(state);
        Assert.Equal(File.ReadAllText("/sys/kernel/mm/ksm/run").Trim() == "1", state.Running);
    }
}
