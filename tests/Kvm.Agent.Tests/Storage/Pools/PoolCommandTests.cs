using Kvm.Agent.Storage.Pools;

namespace Kvm.Agent.Tests.Storage.Pools;

/// <summary>The exact argv of every host command the lvm-thin and nfs pool types run, and the parsers of what those tools print.</summary>
public sealed class PoolCommandTests
{
    [Fact]
    public void LvmCommandsAreExactArgvInBytes()
    {
        Assert.Equal(["lvs", "--noheadings", "--nosuffix", "--units", "b", "--separator", "|", "-o", "lv_name,lv_size,lv_attr,pool_lv,data_percent", "vg0"],
            LvmCommands.List("vg0"));
        Assert.Equal(["lvcreate", "--quiet", "--yes", "--type", "thin", "--virtualsize", "1073741824b", "--thinpool", "data", "--name", "vm-100-disk-scsi0.raw", "vg0"],
            LvmCommands.CreateThin("vg0", "data", "vm-100-disk-scsi0.raw", 1L << 30));
        Assert.Equal(["lvextend", "--quiet", "--size", "3221225472b", "vg0/d.raw"], LvmCommands.Extend("vg0", "d.raw", 3L << 30));
        Assert.Equal(["lvremove", "--quiet", "--yes", "vg0/d.raw"], LvmCommands.Remove("vg0", "d.raw"));
    }

    [Fact]
    public void LvsOutputIsParsedWithThinPoolsVolumesAndAllocation()
    {
        // As lvs prints it with the List options: leading blanks, '|' separators, empty fields for what does not apply.
        const string output = """
              data|10737418240|twi-aotz--||12.50
              d.raw|2147483648|Vwi-a-tz--|data|50.00
              root|5368709120|-wi-ao----||
              broken line
            """;
        var lvs = LvmCommands.ParseList(output);
        Assert.Equal(3, lvs.Count);
        Assert.Equal(new LogicalVolume("data", 10737418240, "twi-aotz--", "", 12.5), lvs[0]);
        Assert.True(lvs[0].IsThinPool);
        Assert.Equal(1342177280, lvs[0].AllocatedBytes);
        Assert.Equal(("d.raw", "data", false, 1073741824L), (lvs[1].Name, lvs[1].PoolLv, lvs[1].IsThinPool, lvs[1].AllocatedBytes));
        Assert.Equal((null, 0L), (lvs[2].DataPercent, lvs[2].AllocatedBytes));
    }

    [Fact]
    public void NfsMountAlwaysAddsNosuidNodevNoexecAndBracketsIpv6()
    {
        Assert.Equal(["mount", "-t", "nfs", "-o", "nosuid,nodev,noexec", "nas.example:/srv/vm", "/var/lib/kvm/pools/nas"],
            NfsCommands.Mount("nas.example", "/srv/vm", null, "/var/lib/kvm/pools/nas"));
        Assert.Equal(["mount", "-t", "nfs", "-o", "nosuid,nodev,noexec,vers=4.2,soft", "[fd00::1]:/srv/vm", "/d/pools/nas"],
            NfsCommands.Mount("fd00::1", "/srv/vm", "vers=4.2,soft", "/d/pools/nas"));
        Assert.Equal(["umount", "/d/pools/nas"], NfsCommands.Unmount("/d/pools/nas"));
    }

    [Fact]
    public void MountinfoTellsWhatIsMountedAtAPathWithEscapesAndTheTopmostMountWinning()
    {
        const string mountinfo = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            40 22 0:35 / /d/pools/nas rw,nosuid,nodev,noexec - nfs4 10.0.0.5:/srv/vm rw,vers=4.2
            41 22 0:36 / /d/pools/with\040space rw - nfs 10.0.0.5:/srv/a\040b rw
            42 40 0:37 / /d/pools/nas rw - tmpfs tmpfs rw
            """;
        Assert.Equal(("tmpfs", "tmpfs"), NfsCommands.MountedAt(mountinfo, "/d/pools/nas"));
        Assert.Equal(("10.0.0.5:/srv/a b", "nfs"), NfsCommands.MountedAt(mountinfo, "/d/pools/with space"));
        Assert.Null(NfsCommands.MountedAt(mountinfo, "/d/pools"));
        Assert.Null(NfsCommands.MountedAt(mountinfo, "/d/pools/with\\040space"));
    }
}
