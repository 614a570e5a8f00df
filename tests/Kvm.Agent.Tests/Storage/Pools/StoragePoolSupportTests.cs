using Kvm.Agent.Storage.Pools;

namespace Kvm.Agent.Tests.Storage.Pools;

/// <summary>Which pool types a host can serve, from fixed host states (this machine's real state is in StoragePoolTypesTests).</summary>
public sealed class StoragePoolSupportTests
{
    private static readonly HashSet<string> AllTools = [.. StoragePoolSupport.Tools];

    private const string ProcMiscWithDm = " 236 device-mapper\n 237 loop-control\n";
    private const string ProcFsWithNfs = "nodev\tsysfs\n\text4\nnodev\tnfs\nnodev\tnfs4\n";

    [Fact]
    public void AHostWithDeviceMapperNfsAndTheToolsServesEveryType()
    {
        var support = StoragePoolSupport.Evaluate(new StorageHostState(ProcFsWithNfs, ProcMiscWithDm, null, "6.1.0", AllTools));
        Assert.Equal(["dir", "lvm-thin", "nfs"], support.Keys);
        Assert.All(support.Values, Assert.Null);
    }

    [Fact]
    public void ThisMachinesKindOfKernelServesOnlyDirAndSaysWhichKernelFeatureIsMissing()
    {
        // No device-mapper in /proc/misc, no nfs in /proc/filesystems, no module tree: as on this machine.
        var support = StoragePoolSupport.Evaluate(new StorageHostState("nodev\tsysfs\n\text4\n", " 237 loop-control\n", null, "6.18.44-fc", AllTools));
        Assert.Null(support["dir"]);
        Assert.Equal("the kernel (6.18.44-fc) has no device-mapper (no device-mapper in /proc/misc and no dm_mod module)", support["lvm-thin"]);
        Assert.Equal("the kernel (6.18.44-fc) has no NFS client (no nfs in /proc/filesystems and no nfs module)", support["nfs"]);
    }

    [Fact]
    public void LoadableModulesCountAndAMissingThinTargetOrToolIsNamed()
    {
        var modules = new HashSet<string> { "dm_mod", "nfs" };
        var support = StoragePoolSupport.Evaluate(new StorageHostState("\text4\n", "", modules, "6.1.0", new HashSet<string> { "lvs", "lvcreate", "lvremove", "lvextend", "mount", "umount" }));
        Assert.Equal("the kernel (6.1.0) has no dm-thin-pool target (no dm_thin_pool module, loadable or built in); thin_check is not on PATH (Debian package thin-provisioning-tools)", support["lvm-thin"]);
        Assert.Equal("mount.nfs is not on PATH (Debian package nfs-common)", support["nfs"]);

        modules.Add("dm_thin_pool");
        support = StoragePoolSupport.Evaluate(new StorageHostState("", "", modules, "6.1.0", new HashSet<string> { "thin_check", "mount.nfs", "mount", "umount" }));
        Assert.Equal("the LVM tools are not installed (lvs is not on PATH; Debian package lvm2)", support["lvm-thin"]);
        Assert.Null(support["nfs"]);
    }

    [Theory]
    [InlineData("dm-thin-pool.ko", "dm_thin_pool")]
    [InlineData("dm-mod.ko.xz", "dm_mod")]
    [InlineData("nfs.ko.zst", "nfs")]
    public void ModuleFileNamesBecomeKernelModuleNames(string file, string name) => Assert.Equal(name, StoragePoolSupport.ModuleName(file));

    [Fact]
    public void ReadFindsModulesIncludingBuiltInOnesAndToolsOnThePath()
    {
        var root = Directory.CreateTempSubdirectory("kvm-pools-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "proc/sys/kernel"));
            File.WriteAllText(Path.Combine(root, "proc/sys/kernel/osrelease"), "6.1.0-test\n");
            File.WriteAllText(Path.Combine(root, "proc/misc"), " 237 loop-control\n");
            File.WriteAllText(Path.Combine(root, "proc/filesystems"), "\text4\n");
            var tree = Path.Combine(root, "modules/6.1.0-test");
            Directory.CreateDirectory(Path.Combine(tree, "kernel/drivers/md"));
            File.WriteAllText(Path.Combine(tree, "kernel/drivers/md/dm-thin-pool.ko.xz"), "");
            File.WriteAllText(Path.Combine(tree, "modules.builtin"), "kernel/drivers/md/dm-mod.ko\n");
            Directory.CreateDirectory(Path.Combine(root, "bin"));
            File.WriteAllText(Path.Combine(root, "bin/lvs"), "");

            var state = StoragePoolSupport.Read(Path.Combine(root, "proc"), Path.Combine(root, "modules"), Path.Combine(root, "bin"));
            Assert.Equal("6.1.0-test", state.KernelRelease);
            Assert.Equal(["dm_mod", "dm_thin_pool"], state.KernelModules!.Order(StringComparer.Ordinal));
            Assert.Contains("lvs", state.Binaries);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
