using Kvm.Agent.Qemu;
using Kvm.Model;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>
/// The pure parts of hot-plug and I/O limits: a hot-plugged slot gets exactly the argv's options, spare root ports
/// exist only where they are needed, and the limits' QMP form (their only form with -blockdev).
/// </summary>
public sealed class HotplugArgsTests
{
    private static VmPaths Paths => GoldenCase.Load("disk-scsi-ssd-discard").Paths;

    [Fact]
    public void A_hot_plugged_slot_gets_exactly_the_options_of_the_argv()
    {
        var input = GoldenCase.Load("disk-scsi-ssd-discard");
        var argv = QemuCommand.Build(input.Spec, input.Facts, input.Paths);
        var device = QemuCommand.DeviceArgsOf(input.Spec, input.Facts, input.Paths, "scsi0");
        Assert.True(device.Ok);
        Assert.NotEmpty(device.Pairs);
        // Every pair appears, in this order, in the cold-start argv.
        var at = 0;
        foreach (var (option, value) in device.Pairs)
        {
            at = Enumerable.Range(at, argv.Count - at - 1).First(i => argv[i] == option && argv[i + 1] == value) + 2;
        }
        Assert.Contains(device.Pairs, p => p.Option == "-device" && p.Value.StartsWith("scsi-hd,", StringComparison.Ordinal));
        Assert.Contains(device.Pairs, p => p.Option == "-blockdev");
    }

    [Fact]
    public void A_nic_slot_gets_its_netdev_and_device()
    {
        var input = GoldenCase.Load("nic-virtio-bridge");
        var argv = QemuCommand.Build(input.Spec, input.Facts, input.Paths);
        var device = QemuCommand.DeviceArgsOf(input.Spec, input.Facts, input.Paths, "net0");
        Assert.Equal(["-netdev", "-device"], device.Pairs.Select(p => p.Option));
        foreach (var (_, value) in device.Pairs)
            Assert.Contains(value, argv);
    }

    [Fact]
    public void Spare_root_ports_only_on_q35_with_disk_or_network_hotplug()
    {
        Assert.Equal(4, QemuCommand.HotplugPortCount(new VmSpec { Name = "a" }));
        Assert.Equal(0, QemuCommand.HotplugPortCount(new VmSpec { Name = "a", Machine = "pc" }));
        Assert.Equal(0, QemuCommand.HotplugPortCount(new VmSpec { Name = "a", Hotplug = ["usb"] }));
        var input = GoldenCase.Load("minimal");
        input.Spec.Hotplug = [];
        Assert.DoesNotContain(QemuCommand.Build(input.Spec, input.Facts, input.Paths), a => a.Contains("pcie-root-port", StringComparison.Ordinal));
    }

    [Fact]
    public void Io_limits_are_block_set_io_throttle_in_bytes_of_proxmox_megabytes()
    {
        var spec = new VmSpec
        {
            Name = "a",
            Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1, MbpsRd = 1.5, MbpsWr = 2, MbpsWrMax = 4, IopsRd = 100, IopsRdMax = 200 } },
        };
        var command = Assert.Single(QemuCommand.PostStartCommands(spec));
        Assert.Equal("block_set_io_throttle", command.Execute);
        Assert.Equal(
            new Dictionary<string, object>
            {
                ["id"] = "scsi0", ["bps"] = 0L, ["bps_rd"] = 1572864L, ["bps_wr"] = 2097152L, ["iops"] = 0L, ["iops_rd"] = 100L, ["iops_wr"] = 0L,
                ["bps_wr_max"] = 4194304L, ["iops_rd_max"] = 200L,
            },
            command.Arguments);
        // Lifting every limit is all zeros.
        spec.Disks["scsi0"] = new DiskSpec { SizeGib = 1 };
        Assert.All(QemuCommand.ThrottleCommand(spec, "scsi0").Arguments.Where(a => a.Key != "id"), a => Assert.Equal(0L, a.Value));
    }

    [Fact]
    public void Io_limit_rules_are_model_errors()
    {
        var spec = new VmSpec { Name = "a", Disks = new() { ["scsi0"] = new DiskSpec { SizeGib = 1, Mbps = 1, MbpsRd = 1, IopsWrMax = 5, IopsMax = 1, Iops = 2 } } };
        var errors = Kvm.Model.Validation.Validator.Validate(spec).Select(e => e.Attribute).ToList();
        Assert.Contains("disks[\"scsi0\"].mbps", errors);
        Assert.Contains("disks[\"scsi0\"].iops_wr_max", errors);
        Assert.Contains("disks[\"scsi0\"].iops_max", errors);
    }
}
