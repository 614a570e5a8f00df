using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>A VM snapshot the user wants: which VM, its name, and whether memory is saved too.</summary>
public class SnapshotSpec : IValidatable
{
    /// <summary>Snapshot names as Proxmox allows them.</summary>
    public const string NamePattern = "[A-Za-z][A-Za-z0-9_-]{1,39}";

    /// <summary>The VM.</summary>
    [Setting("Numeric VM ID of the VM to snapshot.", Required = true, Min = 100, Max = 999_999_999, Update = UpdateKind.Replace)]
    public long? VmId { get; set; }

    /// <summary>Name.</summary>
    [Setting("Snapshot name, unique per VM (Proxmox's `snapname`): a letter, then letters, digits, '_' or '-' (2–40 characters); `current` is reserved.",
        Required = true, Pattern = NamePattern, PatternText = "a letter, then 1–39 letters, digits, '_' or '-'", Update = UpdateKind.Replace)]
    public string? Name { get; set; }

    /// <summary>Free text.</summary>
    [Setting("Free-text description, for people.", MaxLength = 8192, Update = UpdateKind.Live)]
    public string? Description { get; set; }

    /// <summary>Save memory too.</summary>
    [Setting("Save the running VM's memory and device state with its disks (Proxmox's `vmstate`), so a rollback resumes the VM where it was. " +
        "Needs the VM running or paused. `false`: disks only, taken while the guest's file systems are frozen through the guest agent when `agent.enabled`.",
        Default = false, Update = UpdateKind.Replace)]
    public bool? IncludeMemory { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (string.Equals(Name, "current", StringComparison.OrdinalIgnoreCase))
            context.Add(path.Attr("name"), "\"current\" is reserved (it names the VM's present state).");
    }
}

/// <summary>A snapshot as the agent reports it.</summary>
[Resource("snapshot", "A snapshot of a VM: internal qcow2 snapshots of all its writable disks taken together, optionally with the running VM's memory state, " +
    "and copies of its TPM state and EFI variable store. " +
    "It lives inside the VM's disk images (the TPM and EFI copies next to the VM's definition), so deleting the VM deletes its snapshots. Roll back with `kvmctl snapshots rollback` or " +
    "`POST /v1/vms/{vm_id}/snapshots/{name}/rollback`.")]
public sealed class Snapshot : SnapshotSpec
{
    /// <summary>Id.</summary>
    [Setting("Snapshot reference: `<vm_id>/<name>`.", ReadOnly = true)]
    public string? SnapshotId { get; set; }

    /// <summary>Creation time.</summary>
    [Setting("When the snapshot was taken (RFC 3339, UTC).", ReadOnly = true)]
    public string? CreatedAt { get; set; }

    /// <summary>Parent.</summary>
    [Setting("The snapshot the VM's state came from when this one was taken (the last one taken or rolled back to), or null.", ReadOnly = true)]
    public string? Parent { get; set; }

    /// <summary>VM status when taken.</summary>
    [Setting("The VM's status when the snapshot was taken: `running`, `paused` or `stopped`.", ReadOnly = true)]
    public string? VmStatus { get; set; }

    /// <summary>Disks.</summary>
    [Setting("Disk slots the snapshot holds (every disk except read-only ones).", ReadOnly = true)]
    public List<string>? Disks { get; set; }

    /// <summary>Memory state size.</summary>
    [Setting("Bytes of saved memory and device state (0 for a disks-only snapshot).", ReadOnly = true)]
    public long? VmStateBytes { get; set; }

    /// <summary>File systems frozen.</summary>
    [Setting("True when the guest's file systems were frozen through the guest agent while the disks were snapshotted.", ReadOnly = true)]
    public bool? FsFrozen { get; set; }

    /// <summary>TPM state saved.</summary>
    [Setting("The TPM whose state the snapshot holds (`v2.0` or `v1.2`): a copy of the VM's swtpm state taken with the disks, which a rollback " +
        "puts back (unlike Proxmox, a VM with a TPM can be snapshotted). Null when the VM had no TPM.", ReadOnly = true)]
    public string? TpmState { get; set; }

    /// <summary>EFI variables saved.</summary>
    [Setting("True when the snapshot holds a copy of the UEFI VM's EFI variable store (efidisk: boot entries, Secure Boot keys), which a rollback puts back.",
        ReadOnly = true)]
    public bool? EfiVars { get; set; }

    /// <summary>The user-set part only.</summary>
    public SnapshotSpec ToSpec() => new() { VmId = VmId, Name = Name, Description = Description, IncludeMemory = IncludeMemory };
}
