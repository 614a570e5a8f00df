using System.Text.Json.Serialization;
using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>Moving a VM to another host when its <c>host</c> changes, like Proxmox's <c>qm migrate</c> and the bpg provider's <c>migrate</c>.</summary>
public partial class VmSpec
{
    /// <summary>Migration on host change.</summary>
    [Setting("Migrate the VM when its `host` changes instead of re-creating it, like Proxmox's `qm migrate --with-local-disks` " +
        "(see the migration guide). Without it (or with `enabled = false`) a new `host` replaces the VM.",
        NullMeansAbsent = true, Update = UpdateKind.Live)]
    public MigrationSpec? Migration { get; set; }
}

/// <summary>How a host change moves the VM.</summary>
public sealed class MigrationSpec
{
    /// <summary>Migrate on host change.</summary>
    [Setting("A change of `host` migrates the VM with its inline disks and EFI variable store (an in-place update) instead of replacing it.",
        Default = false, Update = UpdateKind.Live)]
    public bool? Enabled { get; set; }

    /// <summary>Live when running.</summary>
    [Setting("Migrate a running VM live (memory and disks copied while it runs, a pause of milliseconds at the switch-over). `false`: a running VM " +
        "is shut down first, copied, and started again on the new host. A stopped VM is always copied cold.",
        Default = true, Update = UpdateKind.Live)]
    public bool? Online { get; set; }
}

/// <summary>
/// The agent-to-agent migration protocol (not a resource). The source answers a <see cref="MigrationPlan"/>, the target
/// an <see cref="IncomingMigration"/>; the orchestrator in Kvm.Client passes one to the other.
/// </summary>
public sealed record MigrationPrepareRequest
{
    /// <summary>Migrate a running VM live.</summary>
    [JsonPropertyName("online")] public bool Online { get; init; } = true;
}

/// <summary>An inline disk as the target must create it: same format and virtual size, empty.</summary>
public sealed record MigrationDisk
{
    /// <summary>Image format (qcow2, raw, vmdk).</summary>
    [JsonPropertyName("format")] public required string Format { get; init; }
    /// <summary>Virtual size in bytes.</summary>
    [JsonPropertyName("virtual_size")] public required long VirtualSize { get; init; }
}

/// <summary>What the source tells the target: the VM's stored spec (secrets in clear) and what to make for it.</summary>
public sealed record MigrationPlan
{
    /// <summary>The VM.</summary>
    [JsonPropertyName("vm_id")] public required long VmId { get; init; }
    /// <summary>The stored spec, as the user set it.</summary>
    [JsonPropertyName("spec")] public required VmSpec Spec { get; init; }
    /// <summary>True: the VM runs and moves live; false: a cold copy.</summary>
    [JsonPropertyName("online")] public required bool Online { get; init; }
    /// <summary>Inline disks by slot.</summary>
    [JsonPropertyName("disks")] public Dictionary<string, MigrationDisk> Disks { get; init; } = [];
    /// <summary>Size of the EFI variable store in bytes (UEFI VMs).</summary>
    [JsonPropertyName("efi_vars_size")] public long? EfiVarsSize { get; init; }
    /// <summary>The source's QEMU version: a live migration needs the same one on the target.</summary>
    [JsonPropertyName("qemu_version")] public string? QemuVersion { get; init; }
    /// <summary>The source stopped the VM for an offline migration and starts it again on the target.</summary>
    [JsonPropertyName("start_after")] public bool StartAfter { get; init; }
}

/// <summary>The target's answer: where the source sends the VM's state and disks.</summary>
public sealed record IncomingMigration
{
    /// <summary>The VM (also the incoming migration's id).</summary>
    [JsonPropertyName("vm_id")] public required long VmId { get; init; }
    /// <summary>Address the target listens on (the address the request reached it at).</summary>
    [JsonPropertyName("address")] public required string Address { get; init; }
    /// <summary>Port of QEMU's incoming migration stream (live only).</summary>
    [JsonPropertyName("migration_port")] public int? MigrationPort { get; init; }
    /// <summary>Port of the NBD server that exports the new disks.</summary>
    [JsonPropertyName("nbd_port")] public required int NbdPort { get; init; }
    /// <summary>NBD export name per disk slot (<c>efi-vars</c> for the EFI variable store).</summary>
    [JsonPropertyName("exports")] public Dictionary<string, string> Exports { get; init; } = [];
    /// <summary>True: live (QEMU waits for the stream); false: cold.</summary>
    [JsonPropertyName("online")] public required bool Online { get; init; }
}

/// <summary>Source-side request to send the VM to a prepared target.</summary>
public sealed record MigrationSendRequest
{
    /// <summary>The target's answer.</summary>
    [JsonPropertyName("target")] public required IncomingMigration Target { get; init; }
    /// <summary>Bound for the whole copy, in seconds.</summary>
    [JsonPropertyName("timeout_seconds")] public double? TimeoutSeconds { get; init; }
}

/// <summary>Source-side answer after a send.</summary>
public sealed record MigrationSendResult
{
    /// <summary>Bytes of disk content transferred (approximate).</summary>
    [JsonPropertyName("disk_bytes")] public long DiskBytes { get; init; }
    /// <summary>Bytes of memory transferred (live).</summary>
    [JsonPropertyName("ram_bytes")] public long RamBytes { get; init; }
    /// <summary>Guest pause at switch-over, in milliseconds (live).</summary>
    [JsonPropertyName("downtime_ms")] public long? DowntimeMs { get; init; }
}

/// <summary>Source-generated serializers of the migration protocol.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(MigrationPrepareRequest))]
[JsonSerializable(typeof(MigrationPlan))]
[JsonSerializable(typeof(IncomingMigration))]
[JsonSerializable(typeof(MigrationSendRequest))]
[JsonSerializable(typeof(MigrationSendResult))]
public sealed partial class MigrationJsonContext : JsonSerializerContext;

/// <summary>What a migration cannot carry: checked by the provider at plan time and by both agents.</summary>
public static class MigrationRules
{
    /// <summary>The settings that keep <paramref name="spec"/> from moving to another host, keyed by attribute path; empty when it can move.</summary>
    public static IReadOnlyList<Validation.ValidationError> Unsupported(VmSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var errors = new List<Validation.ValidationError>();
        void Add(AttrPath at, string detail) => errors.Add(new Validation.ValidationError(at.ToString(), detail));
        var root = AttrPath.Root;
        if (spec.Tpm is not null)
            Add(root.Attr("tpm"), "a VM with a TPM cannot be migrated yet (its swtpm state is not carried); remove the TPM or re-create the VM on the new host.");
        if (spec.PciDevices is { Count: > 0 })
            Add(root.Attr("pci_devices"), "a VM with PCI passthrough cannot be migrated: the device belongs to this host.");
        if (spec.UsbDevices is { Count: > 0 })
            Add(root.Attr("usb_devices"), "a VM with USB devices cannot be migrated: passed-through devices belong to this host.");
        if (spec.SharedDirs is { Count: > 0 })
            Add(root.Attr("shared_dirs"), "a VM with virtiofs shared directories cannot be migrated: the directories belong to this host.");
        foreach (var (slot, port) in spec.SerialPorts ?? [])
            if (port.Type is { } type && type.StartsWith('/'))
                Add(root.Attr("serial_ports").Key(slot).Attr("type"), "a host serial device belongs to this host; a VM using one cannot be migrated.");
        foreach (var (slot, disk) in spec.Disks ?? [])
        {
            var at = root.Attr("disks").Key(slot);
            if (disk.HostDevice is not null)
                Add(at.Attr("host_device"), "a host block device cannot be migrated with the VM.");
            else if (disk.VolumeId is not null)
                Add(at.Attr("volume_id"), "a standalone volume is its own resource on this host and is not moved with the VM; detach it, or re-create the VM.");
            else if (disk.ImageId is not null && disk.LinkedClone == true)
                Add(at.Attr("linked_clone"), "a linked clone depends on an image on this host; it cannot be migrated.");
        }
        if (spec.Clone is { Linked: true })
            Add(root.Attr("clone").Attr("linked"), "a linked clone depends on its source VM's disks on this host; it cannot be migrated.");
        return errors;
    }
}
