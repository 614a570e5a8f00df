using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>Proxmox's <c>hotplug</c>: which kinds of devices come and go while the VM runs.</summary>
public partial class VmSpec : IHotplugRules
{
    /// <summary>Hot-plug class of <see cref="Disks"/> entries.</summary>
    public const string HotplugDisk = "disk";
    /// <summary>Hot-plug class of <see cref="NetworkInterfaces"/> entries.</summary>
    public const string HotplugNetwork = "network";
    /// <summary>Hot-plug class of <see cref="UsbDevices"/> entries.</summary>
    public const string HotplugUsb = "usb";
    /// <summary>Hot-plug class of <c>cpu.vcpus</c> changes.</summary>
    public const string HotplugCpu = "cpu";
    /// <summary>Hot-plug class of <c>memory.size_mib</c> growth.</summary>
    public const string HotplugMemory = "memory";

    /// <summary>Hot-plug classes.</summary>
    [Setting("Device kinds added and removed while the VM runs, like Proxmox's `hotplug`: `disk` (scsi and virtio disks; " +
        "sata and ide disks always wait for a restart), `network` (network interfaces), `usb` (`usb_devices` entries; the VM needs its USB " +
        "controller, which it has with a tablet or any USB device), `cpu` (`cpu.vcpus` changes), `memory` (`memory.size_mib` growth up to " +
        "`memory.hotplug_max_mib`). A kind left out makes such a change a restart change, as in Proxmox, whose default also leaves out " +
        "`cpu` and `memory`. Disk and NIC removal needs the guest's consent for PCI devices (virtio disks, NICs); a guest that does not " +
        "answer leaves the removal pending.",
        Set = true, OneOf = ["disk", "network", "usb", "cpu", "memory"], Update = UpdateKind.Live,
        DefaultText = "`[\"disk\", \"network\", \"usb\"]`")]
    public List<string>? Hotplug { get; set; }

    /// <summary>The effective hot-plug classes (Proxmox's default when unset).</summary>
    public IReadOnlyList<string> EffectiveHotplug() => Hotplug ?? [HotplugDisk, HotplugNetwork, HotplugUsb];

    /// <summary>True when <paramref name="hotplugClass"/> is in the effective <c>hotplug</c>.</summary>
    public bool Hotplugs(string hotplugClass) => EffectiveHotplug().Contains(hotplugClass, StringComparer.Ordinal);

    /// <inheritdoc />
    public bool CanHotplug(string hotplugClass, string key)
    {
        if (!Hotplugs(hotplugClass))
            return false;
        return hotplugClass switch
        {
            // QEMU plugs SCSI and virtio disks live; IDE and AHCI (SATA) ports have no hot-plug.
            HotplugDisk => key.StartsWith("scsi", StringComparison.Ordinal) || key.StartsWith("virtio", StringComparison.Ordinal),
            // A USB device needs the controller; it comes and goes with the tablet or the first/last USB device, at a start.
            HotplugUsb => HasUsbController(),
            _ => true,
        };
    }

    /// <summary>
    /// Whether QEMU gets the VM's qemu-xhci controller: with any USB device, or for the tablet (on by default) when there is a
    /// graphics adapter for it to point on and no passed-through primary GPU. Asked on the effective (defaulted) spec.
    /// </summary>
    public bool HasUsbController() =>
        UsbDevices is { Count: > 0 }
        || (Tablet == true && (Display?.Vga ?? "std") is not ("none" or "serial0") && PciDevices?.Values.Any(p => p.PrimaryGpu == true) != true);

    /// <summary>
    /// <c>cpu.vcpus</c> and <c>memory.size_mib</c> are live only when <c>cpu</c> or <c>memory</c> is in <c>hotplug</c> before and after
    /// the change (Proxmox's rule); otherwise they wait for a restart, and plans say so. Takes the effective (defaulted) specs.
    /// </summary>
    public static void RefineHotplugChanges(VmSpec b, VmSpec a, List<SettingChange> changes)
    {
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(changes);
        for (var i = 0; i < changes.Count; i++)
        {
            var change = changes[i];
            if (change.Kind != UpdateKind.Live)
                continue;
            var restart = change.Attribute switch
            {
                "cpu.vcpus" => (b.Cpu!.Vcpus ?? b.Cpu.MaxVcpus) != (a.Cpu!.Vcpus ?? a.Cpu.MaxVcpus) && !(b.Hotplugs(HotplugCpu) && a.Hotplugs(HotplugCpu)),
                "memory.size_mib" => b.Memory!.SizeMib != a.Memory!.SizeMib && !(b.Hotplugs(HotplugMemory) && a.Hotplugs(HotplugMemory)),
                _ => false,
            };
            if (restart)
                changes[i] = change with { Kind = UpdateKind.Restart };
        }
    }
}
