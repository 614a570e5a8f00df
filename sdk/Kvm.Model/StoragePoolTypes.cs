using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>The settings of the <c>lvm-thin</c> and <c>nfs</c> pool types, and which settings each type takes.</summary>
public partial class StoragePoolSpec : IValidatable
{
    /// <summary>LVM names: what lvm(8) accepts for volume groups and logical volumes, never starting with '-'.</summary>
    public const string LvmNamePattern = "[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}";

    /// <summary>Volume group.</summary>
    [Setting("`lvm-thin`: the LVM volume group that holds the thin pool, as Proxmox's `vgname`. It must exist; the agent never creates or removes it.",
        Pattern = LvmNamePattern, PatternText = "an LVM name: letters, digits, '+', '_', '.' and '-', not starting with '-'", Update = UpdateKind.Replace)]
    public string? VolumeGroup { get; set; }

    /// <summary>Thin pool.</summary>
    [Setting("`lvm-thin`: the thin pool logical volume in `volume_group`, as Proxmox's `thinpool`. It must exist; volumes and inline disks " +
        "become thin logical volumes in it, always raw.",
        Pattern = LvmNamePattern, PatternText = "an LVM name: letters, digits, '+', '_', '.' and '-', not starting with '-'", Update = UpdateKind.Replace)]
    public string? ThinPool { get; set; }

    /// <summary>NFS server.</summary>
    [Setting("`nfs`: the NFS server, a host name or an IPv4 or IPv6 address.",
        Pattern = "[A-Za-z0-9][A-Za-z0-9.-]{0,252}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*", PatternText = "a host name or an IP address", Update = UpdateKind.Replace)]
    public string? Server { get; set; }

    /// <summary>NFS export.</summary>
    [Setting("`nfs`: the exported directory on the server, e.g. `/srv/vm-images`. The agent mounts it at `<data-dir>/pools/<name>` " +
        "(shown in `host_path`), remounts it when the agent starts, and unmounts it when the pool is deleted.",
        Pattern = "/[^\\u0000-\\u001f,]*", PatternText = "an absolute path without commas", MaxLength = 1024, Update = UpdateKind.Replace)]
    public string? Export { get; set; }

    /// <summary>NFS mount options.</summary>
    [Setting("`nfs`: mount options passed to mount.nfs, e.g. `vers=4.2,soft`, as Proxmox's `options`. The agent always adds `nosuid,nodev,noexec`; " +
        "options that would undo them (`suid`, `dev`, `exec`, `defaults`) or change the mount (`remount`, `bind`, `rbind`, `move`) are refused.",
        Pattern = "[a-z0-9_]+(=[A-Za-z0-9_.:/-]+)?(,[a-z0-9_]+(=[A-Za-z0-9_.:/-]+)?)*", PatternText = "comma-separated option or option=value words",
        MaxLength = 512, Update = UpdateKind.Replace)]
    public string? MountOptions { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        var type = Type ?? "dir";
        // Which settings each type needs (true) or refuses (false); absent: not applicable.
        var rules = type switch
        {
            "lvm-thin" => new Dictionary<string, bool> { ["volume_group"] = true, ["thin_pool"] = true, ["path"] = false, ["server"] = false, ["export"] = false, ["mount_options"] = false },
            "nfs" => new Dictionary<string, bool> { ["server"] = true, ["export"] = true, ["path"] = false, ["volume_group"] = false, ["thin_pool"] = false },
            "dir" => new Dictionary<string, bool> { ["path"] = true, ["volume_group"] = false, ["thin_pool"] = false, ["server"] = false, ["export"] = false, ["mount_options"] = false },
            _ => [],
        };
        var values = new Dictionary<string, string?>
        {
            ["path"] = Path, ["volume_group"] = VolumeGroup, ["thin_pool"] = ThinPool, ["server"] = Server, ["export"] = Export, ["mount_options"] = MountOptions,
        };
        foreach (var (name, needed) in rules)
        {
            if (needed && values[name] is null)
                context.Add(path.Attr(name), $"is required for a pool of type \"{type}\".");
            else if (!needed && values[name] is not null)
                context.Add(path.Attr(name), type == "nfs" && name == "path"
                    ? "does not apply to an nfs pool: the agent mounts the export at <data-dir>/pools/<name> (see host_path)."
                    : $"does not apply to a pool of type \"{type}\".");
        }
        // Later options win in mount(8): these would undo nosuid,nodev,noexec or turn the mount into something else.
        if (MountOptions?.Split(',').Select(o => o.Split('=')[0]).FirstOrDefault(o => o is "suid" or "dev" or "exec" or "remount" or "bind" or "rbind" or "move" or "defaults") is { } forbidden)
            context.Add(path.Attr("mount_options"), $"\"{forbidden}\" is not allowed: the agent mounts pools nosuid,nodev,noexec and manages the mount itself.");
        if (Export is not null && Export.Split('/').Any(part => part is "." or ".."))
            context.Add(path.Attr("export"), "must not contain \".\" or \"..\" segments.");
    }
}

/// <summary>Where a pool's volumes are on the host.</summary>
public sealed partial class StoragePool
{
    /// <summary>Host path.</summary>
    [Setting("Where the pool's volumes are on the host: `path` for `dir`, the agent's mount point for `nfs`, `/dev/<volume_group>` for `lvm-thin`.", ReadOnly = true)]
    public string? HostPath { get; set; }
}

/// <summary>Which storage pool types the host can serve.</summary>
public sealed partial class HostInfo
{
    /// <summary>Pool types.</summary>
    [Setting("Storage pool types this host can serve now (`dir`, and `lvm-thin`/`nfs` when the kernel and tools for them are present).", ReadOnly = true)]
    public List<string>? StoragePoolTypes { get; set; }

    /// <summary>Why not.</summary>
    [Setting("For each storage pool type the host cannot serve, what is missing (a kernel feature such as device-mapper or the NFS client, or a tool).", ReadOnly = true)]
    public Dictionary<string, string>? StoragePoolTypesUnavailable { get; set; }
}
