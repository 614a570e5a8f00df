using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>Proxmox's <c>hotplug</c>: which kinds of devices come and go while the VM runs.</summary>
public partial class VmSpec : IHotplugRules
{
    /// <summary>Hot-plug class of <see cref="Disks"/> entries.</summary>
    public const string HotplugDisk = "disk";
    /// <summary>Hot-plug class of <see cref="NetworkInterfaces"/> entries.</summary>
    public const string HotplugNetwork = "network";

    /// <summary>Hot-plug classes.</summary>
    [Setting("Device kinds added and removed while the VM runs, like Proxmox's `hotplug`: `disk` (scsi and virtio disks; " +
        "sata and ide disks always wait for a restart), `network` (network interfaces), `usb`, `cpu`, `memory`. " +
        "A kind left out makes adding or removing such a device a restart change. `usb`, `cpu` and `memory` are accepted " +
        "for Proxmox compatibility and change nothing: USB devices wait for a restart, vCPUs are plugged live through `cpu.vcpus` " +
        "and memory through `memory.hotplug_max_mib`. Disk and NIC removal needs the guest's " +
        "consent for PCI devices (virtio disks, NICs); a guest that does not answer leaves the removal pending.",
        Set = true, OneOf = ["disk", "network", "usb", "cpu", "memory"], Update = UpdateKind.Live,
        DefaultText = "`[\"disk\", \"network\", \"usb\"]`")]
    public List<string>? Hotplug { get; set; }

    /// <summary>The effective hot-plug classes (Proxmox's default when unset).</summary>
    public IReadOnlyList<string> EffectiveHotplug() => Hotplug ?? [HotplugDisk, HotplugNetwork, "usb"];

    /// <inheritdoc />
    public bool CanHotplug(string hotplugClass, string key)
    {
        if (!EffectiveHotplug().Contains(hotplugClass, StringComparer.Ordinal))
            return false;
        // QEMU plugs SCSI and virtio disks live; IDE and AHCI (SATA) ports have no hot-plug.
        return hotplugClass != HotplugDisk || key.StartsWith("scsi", StringComparison.Ordinal) || key.StartsWith("virtio", StringComparison.Ordinal);
    }
}
