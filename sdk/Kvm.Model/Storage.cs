using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>A standalone volume the user wants.</summary>
public class VolumeSpec : IValidatable
{
    /// <summary>Name.</summary>
    [Setting("File name of the volume in its pool, e.g. `data.qcow2`.", Required = true,
        Pattern = Patterns.VolumeName, PatternText = Patterns.VolumeNameText, Update = UpdateKind.Replace)]
    public string? Name { get; set; }

    /// <summary>Pool.</summary>
    [Setting("Storage pool that holds the volume.", Default = "default", Pattern = Patterns.PoolName, PatternText = Patterns.PoolNameText, Update = UpdateKind.Replace)]
    public string? Pool { get; set; }

    /// <summary>Size.</summary>
    [Setting("Size in GiB. Growing applies in place (live while a running VM uses it); shrinking is refused.",
        Required = true, Min = 1, Max = 65536, Update = UpdateKind.Live)]
    public long? SizeGib { get; set; }

    /// <summary>Format.</summary>
    [Setting("Image format: `qcow2` or `raw`. A volume in an `lvm-thin` pool is a raw thin logical volume: set `raw` there.", Default = "qcow2", OneOf = ["qcow2", "raw"], Update = UpdateKind.Replace)]
    public string? Format { get; set; }

    /// <summary>Preallocation.</summary>
    [Setting("Preallocation: `off`, `metadata` (qcow2), `falloc` or `full`.", Default = "off",
        OneOf = ["off", "metadata", "falloc", "full"], Update = UpdateKind.Replace)]
    public string? Preallocation { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (Preallocation == "metadata" && Format == "raw")
            context.Add(path.Attr("preallocation"), "\"metadata\" applies to qcow2 only.");
    }

    /// <summary>Rules that compare an update with the current spec.</summary>
    public IReadOnlyList<ValidationError> ValidateUpdate(VolumeSpec before)
    {
        var context = new ValidationContext();
        if (SizeGib < before.SizeGib)
            context.Add(AttrPath.Root.Attr("size_gib"), $"volumes can only grow: {SizeGib} GiB is smaller than the current {before.SizeGib} GiB.");
        return context.Errors;
    }
}

/// <summary>A volume as the agent reports it.</summary>
[Resource("volume", "A standalone disk volume in a storage pool. It attaches to a VM's disk slot by `volume_id` and survives the VM.")]
public sealed class Volume : VolumeSpec
{
    /// <summary>Id.</summary>
    [Setting("Volume reference used by disks: `<pool>/<name>`.", ReadOnly = true)]
    public string? VolumeId { get; set; }

    /// <summary>Path.</summary>
    [Setting("Host path of the volume file.", ReadOnly = true)]
    public string? Path { get; set; }

    /// <summary>Virtual size.</summary>
    [Setting("Virtual size in bytes, as `qemu-img info` reports it.", ReadOnly = true)]
    public long? CapacityBytes { get; set; }

    /// <summary>Allocated bytes.</summary>
    [Setting("Bytes the volume occupies on the host.", ReadOnly = true)]
    public long? AllocationBytes { get; set; }

    /// <summary>Users.</summary>
    [Setting("VM disk slots that use the volume, as `<vm_id>/<slot>`.", ReadOnly = true)]
    public List<string>? AttachedTo { get; set; }
}

/// <summary>A storage pool the user wants (the settings of the <c>lvm-thin</c> and <c>nfs</c> types are in StoragePoolTypes.cs).</summary>
public partial class StoragePoolSpec
{
    /// <summary>Name.</summary>
    [Setting("Pool name, used in volume references (`<pool>/<name>`). `default` is built in.", Required = true,
        Pattern = Patterns.PoolName, PatternText = Patterns.PoolNameText, Update = UpdateKind.Replace)]
    public string? Name { get; set; }

    /// <summary>Type.</summary>
    [Setting("Pool type: `dir` (a directory of image files), `lvm-thin` (raw thin logical volumes in an existing LVM thin pool) or " +
        "`nfs` (an NFS export the agent mounts and uses as a directory). `host.storage_pool_types` lists the types a host can serve.",
        Default = "dir", OneOf = ["dir", "lvm-thin", "nfs"], Update = UpdateKind.Replace)]
    public string? Type { get; set; }

    /// <summary>Path.</summary>
    [Setting("Absolute directory on the host; created when missing. Required for `dir`, not used by the other types.", Pattern = Patterns.AbsolutePath,
        PatternText = "an absolute path", MaxLength = 1024, Update = UpdateKind.Replace)]
    public string? Path { get; set; }
}

/// <summary>A storage pool as the agent reports it.</summary>
[Resource("storage_pool", "A storage pool on a host: a directory, an LVM thin pool or an NFS export that holds volumes, inline disks and ISO images.")]
public sealed partial class StoragePool : StoragePoolSpec
{
    /// <summary>Capacity.</summary>
    [Setting("Size of the file system that holds the pool (for `lvm-thin`: of the thin pool), in bytes.", ReadOnly = true)]
    public long? CapacityBytes { get; set; }

    /// <summary>Free space.</summary>
    [Setting("Free bytes on that file system (for `lvm-thin`: the thin pool's unused data space).", ReadOnly = true)]
    public long? AvailableBytes { get; set; }

    /// <summary>Built in.</summary>
    [Setting("True for the agent's built-in `default` pool, which cannot be deleted.", ReadOnly = true)]
    public bool? Builtin { get; set; }
}
