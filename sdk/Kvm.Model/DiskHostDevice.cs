using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>A host block device as a disk, like Proxmox's <c>scsi1: /dev/disk/by-id/…</c>.</summary>
public sealed partial class DiskSpec
{
    /// <summary>Host block device.</summary>
    [Setting("Host block device the disk passes through, as Proxmox's `scsi1: /dev/disk/by-id/...` (an absolute path; links are " +
        "followed). It must be a block device when the VM is created or started. The agent never creates, resizes or deletes it: " +
        "like a volume, it and its data outlive the VM. Two running VMs may share one device only when both attach it read-only. " +
        "Not with `volume_id`, `image_id`, `size_gib`, `format`, `pool`, `preallocation` or `linked_clone`.",
        Pattern = Patterns.AbsolutePath, PatternText = "an absolute path, for example \"/dev/disk/by-id/wwn-0x5000c500a1b2c3d4\"")]
    public string? HostDevice { get; set; }

    private void ValidateHostDevice(ValidationContext context, AttrPath path)
    {
        if (HostDevice is null)
            return;
        foreach (var (name, set) in new[]
        {
            ("volume_id", VolumeId is not null), ("image_id", ImageId is not null), ("size_gib", SizeGib is not null),
            ("format", Format is not null), ("pool", Pool is not null), ("preallocation", Preallocation is not null),
            ("linked_clone", LinkedClone is not null),
        })
        {
            if (set)
                context.Add(path.Attr(name), "does not apply to a host block device (`host_device`): the device is the disk, as it is.");
        }
        if (HostDevice.Split('/').Any(part => part is "." or ".."))
            context.Add(path.Attr("host_device"), "must not contain \".\" or \"..\" segments; name the device by its own path.");
    }
}

/// <summary>What the agent reads from a VM's host block devices.</summary>
public sealed partial class Vm
{
    /// <summary>Sizes of the host-device disks.</summary>
    [Setting("Size in bytes of each disk slot that is a host block device (`host_device`), read from the device itself; " +
        "absent for a device that is missing.", ReadOnly = true)]
    public Dictionary<string, long>? HostDeviceSizeBytes { get; set; }
}
