namespace Kvm.Model;

/// <summary>Shared name and slot rules, in one place so every record and every message agrees.</summary>
public static class Patterns
{
    /// <summary>VM names: a DNS label-like name, as Proxmox requires.</summary>
    public const string VmName = "[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?";
    /// <summary>Words for <see cref="VmName"/>.</summary>
    public const string VmNameText = "letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters";

    /// <summary>Storage pool names.</summary>
    public const string PoolName = "[a-z][a-z0-9-]{0,31}";
    /// <summary>Words for <see cref="PoolName"/>.</summary>
    public const string PoolNameText = "lower-case letters, digits and '-', starting with a letter, at most 32 characters";

    /// <summary>Volume file names inside a pool (no path separators, never '.' or '..').</summary>
    public const string VolumeName = "[A-Za-z0-9][A-Za-z0-9._-]{0,127}";
    /// <summary>Words for <see cref="VolumeName"/>.</summary>
    public const string VolumeNameText = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters";

    /// <summary>A volume reference: <c>pool/name</c>.</summary>
    public const string VolumeId = PoolName + "/" + VolumeName;
    /// <summary>Words for <see cref="VolumeId"/>.</summary>
    public const string VolumeIdText = "\"<pool>/<volume name>\", for example \"default/data.qcow2\"";

    /// <summary>Words for an image reference (same form as <see cref="VolumeId"/>).</summary>
    public const string ImageIdText = "\"<pool>/<image name>\", for example \"default/debian-13.qcow2\"";

    /// <summary>Disk slots, with Proxmox's limits per bus.</summary>
    public const string DiskSlot = "ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])";
    /// <summary>Words for <see cref="DiskSlot"/>.</summary>
    public const string DiskSlotText = "a slot name ide0–ide3, sata0–sata5, scsi0–scsi30 or virtio0–virtio15";

    /// <summary>CD-ROM slots.</summary>
    public const string CdromSlot = "ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)";
    /// <summary>Words for <see cref="CdromSlot"/>.</summary>
    public const string CdromSlotText = "a slot name ide0–ide3, sata0–sata5 or scsi0–scsi30";

    /// <summary>Network interface slots.</summary>
    public const string NicSlot = "net([0-9]|[12][0-9]|3[01])";
    /// <summary>Words for <see cref="NicSlot"/>.</summary>
    public const string NicSlotText = "a slot name net0–net31";

    /// <summary>A unicast or multicast MAC address in colon notation (unicast is checked separately).</summary>
    public const string Mac = "[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}";
    /// <summary>Linux interface names the agent may create (at most 15 bytes).</summary>
    public const string InterfaceName = "[A-Za-z][A-Za-z0-9_-]{0,14}";
    /// <summary>Words for <see cref="InterfaceName"/>.</summary>
    public const string InterfaceNameText = "a Linux interface name: a letter, then letters, digits, '_' or '-', at most 15 characters";

    /// <summary>Proxmox-style tags.</summary>
    public const string Tag = "[a-z0-9_][a-z0-9_+.-]{0,63}";
    /// <summary>Absolute host paths.</summary>
    public const string AbsolutePath = "/[^\\u0000-\\u001f]*";
}
