using System.Net;
using Kvm.Agent.Tests.Qemu;
using Kvm.Model;
using Xunit.Abstractions;
using RealAgent = Kvm.Agent.Tests.Support.TestAgent;

namespace Kvm.Agent.Tests.Storage.Pools;

/// <summary>
/// An lvm-thin pool for real: a sparse file on a loop device becomes a physical volume, a volume group of the test's own
/// and a 256 MiB thin pool; the agent serves volumes and a VM's inline disk from it as thin logical volumes. Runs only
/// where the kernel has device-mapper (see <see cref="PoolTypeHostFactAttribute"/>); everything it made is removed, also
/// on failure.
/// </summary>
public sealed class LvmThinRealTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static Kvm.Agent.Host.CommandResult Run(params string[] argv) => RealQemu.Run(argv, Timeout);

    private static void Must(params string[] argv)
    {
        var result = Run(argv);
        Assert.True(result.Ok, $"{string.Join(' ', argv)}: {result.StdErr}");
    }

    private static Dictionary<string, long> ThinVolumes(string vg) =>
        Run("lvs", "--noheadings", "--nosuffix", "--units", "b", "--separator", "|", "-o", "lv_name,lv_size,pool_lv", vg).StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('|')).Where(f => f.Length == 3 && f[2] == "tp").ToDictionary(f => f[0], f => long.Parse(f[1]));

    [PoolTypeHostFact("lvm-thin", "losetup", "pvcreate", "vgcreate")]
    public async Task VolumesAndInlineDisksAreThinLogicalVolumesInARealThinPool()
    {
        var work = Directory.CreateTempSubdirectory("kvm-lvm-").FullName;
        var vg = "kvmt" + Guid.NewGuid().ToString("N")[..8];
        var image = Path.Combine(work, "pv.img");
        string? loop = null;
        try
        {
            Must("truncate", "-s", "512M", image);
            var attach = Run("losetup", "--find", "--show", image);
            Assert.True(attach.Ok, attach.StdErr);
            loop = attach.StdOut.Trim();
            Must("pvcreate", "--quiet", loop);
            Must("vgcreate", "--quiet", vg, loop);
            Must("lvcreate", "--quiet", "--type", "thin-pool", "--size", "256m", "--name", "tp", vg);
            output.WriteLine($"thin pool {vg}/tp on {loop}");

            await using var agent = await RealAgent.StartAsync();
            var client = agent.Client;
            var pool = (await client.CreateStoragePoolAsync(new StoragePoolSpec { Name = "thin", Type = "lvm-thin", VolumeGroup = vg, ThinPool = "tp" })).Value;
            Assert.Equal(("/dev/" + vg, 256L << 20), (pool.HostPath, pool.CapacityBytes));

            using var http = agent.RawClient();
            var refused = await (await http.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"d.qcow2","pool":"thin","size_gib":1}"""))
                .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
            Assert.Equal("format", Assert.Single(refused.Errors!).Attribute);

            var volume = (await client.CreateVolumeAsync(new VolumeSpec { Name = "d.raw", Pool = "thin", SizeGib = 1, Format = "raw" })).Value;
            Assert.Equal(($"/dev/{vg}/d.raw", 1L << 30), (volume.Path, volume.CapacityBytes));
            Assert.Equal(1L << 30, ThinVolumes(vg)["d.raw"]); // thin: 1 GiB in a 256 MiB pool
            volume.SizeGib = 2;
            await client.UpdateVolumeAsync("thin", "d.raw", volume);
            Assert.Equal(2L << 30, ThinVolumes(vg)["d.raw"]);
            Assert.Equal(HttpStatusCode.Conflict, (await http.DeleteAsync("/v1/storage-pools/thin")).StatusCode);

            var spec = Support.Specs.Stopped();
            spec.Disks = new() { ["virtio0"] = new DiskSpec { Pool = "thin", SizeGib = 1, Format = "raw" } };
            var vm = (await client.CreateVmAsync(spec)).Value;
            var lv = $"vm-{vm.VmId}-disk-virtio0.raw";
            Assert.Equal(1L << 30, ThinVolumes(vg)[lv]);
            await client.DeleteVmAsync(vm.VmId!.Value);
            Assert.False(ThinVolumes(vg).ContainsKey(lv));

            await client.DeleteVolumeAsync("thin", "d.raw");
            Assert.Empty(ThinVolumes(vg));
            await client.DeleteStoragePoolAsync("thin");
        }
        finally
        {
            Run("vgremove", "--force", "--yes", vg);
            if (loop is not null)
            {
                Run("pvremove", "--yes", loop);
                Run("losetup", "--detach", loop);
            }
            Directory.Delete(work, recursive: true);
        }
    }
}

/// <summary>
/// An nfs pool for real against a loopback export the test makes (kernel nfsd, exportfs to 127.0.0.1 only): the agent
/// mounts it, a volume lands in the exported directory, and deleting the pool unmounts it. Runs only where the kernel
/// has an NFS client and server; the export and the mount are removed, also on failure.
/// </summary>
public sealed class NfsRealTests(ITestOutputHelper output)
{
    private static Kvm.Agent.Host.CommandResult Run(params string[] argv) => RealQemu.Run(argv, TimeSpan.FromSeconds(60));

    [PoolTypeHostFact("nfs", "exportfs", "rpc.nfsd")]
    public async Task AnNfsPoolMountsALoopbackExportAndKeepsVolumesThere()
    {
        var export = Directory.CreateTempSubdirectory("kvm-nfs-export-").FullName;
        var exported = false;
        await using var agent = await RealAgent.StartAsync();
        var mountPoint = Path.Combine(agent.DataDir, "pools", "nas");
        try
        {
            var nfsd = Run("rpc.nfsd", "8");
            Assert.True(nfsd.Ok, "rpc.nfsd: " + nfsd.StdErr);
            var add = Run("exportfs", "-o", "rw,no_root_squash,insecure,no_subtree_check", "127.0.0.1:" + export);
            Assert.True(add.Ok, "exportfs: " + add.StdErr);
            exported = true;
            output.WriteLine($"exported {export} to 127.0.0.1");

            var client = agent.Client;
            var pool = (await client.CreateStoragePoolAsync(new StoragePoolSpec { Name = "nas", Type = "nfs", Server = "127.0.0.1", Export = export, MountOptions = "vers=4.2" })).Value;
            Assert.Equal(mountPoint, pool.HostPath);
            Assert.Contains(" " + mountPoint + " ", File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);

            var volume = (await client.CreateVolumeAsync(new VolumeSpec { Name = "d.qcow2", Pool = "nas", SizeGib = 1 })).Value;
            Assert.Equal(Path.Combine(mountPoint, "d.qcow2"), volume.Path);
            Assert.True(File.Exists(Path.Combine(export, "d.qcow2")));
            await client.DeleteVolumeAsync("nas", "d.qcow2");

            await client.DeleteStoragePoolAsync("nas");
            Assert.DoesNotContain(" " + mountPoint + " ", File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);
            Assert.False(Directory.Exists(mountPoint));
        }
        finally
        {
            if (File.ReadAllText("/proc/self/mountinfo").Contains(" " + mountPoint + " ", StringComparison.Ordinal))
                Run("umount", "-f", mountPoint);
            if (exported)
                Run("exportfs", "-u", "127.0.0.1:" + export);
            Directory.Delete(export, recursive: true);
        }
    }
}
