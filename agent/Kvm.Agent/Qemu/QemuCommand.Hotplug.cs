using Kvm.Agent.Host;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Agent.Qemu;

/// <summary>The argv pairs of one device (<c>-blockdev</c>, <c>-object</c>, <c>-netdev</c>, <c>-device</c>), in argv order.</summary>
public sealed record DeviceArgs(IReadOnlyList<(string Option, string Value)> Pairs, IReadOnlyList<ValidationError> Errors)
{
    /// <summary>No errors.</summary>
    public bool Ok => Errors.Count == 0;
}

public static partial class QemuCommand
{
    /// <summary>
    /// Spare PCIe root ports on q35 for devices added while the VM runs: q35's root bus (pcie.0) takes no hot-plug,
    /// a root port does. They sit at a fixed slot, functions 0–3, and are written before any auto-addressed device,
    /// so they never move what the VM already has.
    /// </summary>
    internal const int SpareHotplugPorts = 4;
    internal const int HotplugPortSlot = 0x1c;
    internal const int HotplugChassis = 1;

    /// <summary>qdev id of spare root port <paramref name="index"/>.</summary>
    public static string HotplugPortId(int index) => "hotplug" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>How many spare root ports a VM gets (0 off q35 or without disk/network hot-plug).</summary>
    public static int HotplugPortCount(VmSpec spec)
    {
        var vm = Defaults.Apply(spec);
        var hotplug = vm.EffectiveHotplug();
        return vm.Machine!.Contains("q35", StringComparison.Ordinal)
            && (hotplug.Contains(VmSpec.HotplugDisk, StringComparer.Ordinal) || hotplug.Contains(VmSpec.HotplugNetwork, StringComparer.Ordinal))
            ? SpareHotplugPorts : 0;
    }

    private static void HotplugPorts(Context c)
    {
        var count = HotplugPortCount(c.Vm);
        for (var i = 0; i < count; i++)
        {
            var port = QemuOptions.Of("pcie-root-port").Add("id", HotplugPortId(i)).Add("bus", "pcie.0")
                .Add("addr", $"{PciAddress(HotplugPortSlot)}.{i}");
            if (i == 0)
                port.Add("multifunction", true);
            // Chassis 1 is the spare ports'; passthrough root ports use their own chassis, so no chassis/slot pair repeats.
            c.Arg("-device", port.Add("chassis", HotplugChassis).Add("slot", i + 1).ToString());
        }
    }

    /// <summary>
    /// The argv pairs the builder gives one disk, NIC or USB slot of <paramref name="spec"/>, with exactly the same
    /// properties as at a cold start: a hot-plug sends these. A shared SCSI controller (<c>scsihwN</c>) is not
    /// part of them; see <see cref="ScsiControllerDevice"/>.
    /// </summary>
    public static DeviceArgs DeviceArgsOf(VmSpec spec, HostFacts facts, VmPaths paths, string slot)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var invalid = Validator.Validate(spec);
        if (invalid.Count > 0)
            return new DeviceArgs([], invalid);
        var c = new Context(spec, Defaults.Apply(spec), facts, paths);
        Machine(c); // the accelerator (vhost-net is KVM-only)
        BootIndexes(c);
        c.Args.Clear();
        if (c.Vm.Disks?.GetValueOrDefault(slot) is { } disk)
            Disk(c, slot, disk);
        else if (c.Vm.NetworkInterfaces?.GetValueOrDefault(slot) is { } nic)
            Nic(c, slot, nic);
        else if (c.Vm.UsbDevices?.GetValueOrDefault(slot) is { } usb)
            UsbDevice(c, slot, usb);
        else
            c.Error(SlotPath(slot), $"internal: no disk, network interface or USB device in slot \"{slot}\".");
        c.CheckArgv();
        if (c.Errors.Count > 0)
            return new DeviceArgs([], c.Errors);
        var pairs = new List<(string, string)>();
        for (var i = 0; i + 1 < c.Args.Count; i += 2)
            pairs.Add((c.Args[i], c.Args[i + 1]));
        return new DeviceArgs(pairs, []);
    }

    /// <summary>
    /// The <c>-device</c> value of the shared SCSI controller a scsi slot sits on (<c>scsihwN</c>), or null when the
    /// slot has its own controller (virtio-scsi-single; it is part of <see cref="DeviceArgsOf"/>) or is not scsi.
    /// </summary>
    public static (string Id, string Device)? ScsiControllerDevice(VmSpec spec, string slot)
    {
        var vm = Defaults.Apply(spec);
        var (bus, index) = ParseSlot(slot);
        if (bus != "scsi" || vm.ScsiController == "virtio-scsi-single")
            return null;
        var (device, targets) = ScsiControllers[vm.ScsiController!];
        var id = $"scsihw{index / targets}";
        return (id, $"{device},id={id}");
    }

    /// <summary>The qdev id of the per-slot controller a virtio-scsi-single scsi slot has, or null.</summary>
    public static string? OwnControllerId(VmSpec spec, string slot)
    {
        var (bus, index) = ParseSlot(slot);
        return bus == "scsi" && Defaults.Apply(spec).ScsiController == "virtio-scsi-single" ? $"virtioscsi{index}" : null;
    }

    private static Kvm.Model.Schema.AttrPath SlotPath(string slot) =>
        Attr(slot.StartsWith("net", StringComparison.Ordinal) ? "network_interfaces" : slot.StartsWith("usb", StringComparison.Ordinal) ? "usb_devices" : "disks").Key(slot);
}
