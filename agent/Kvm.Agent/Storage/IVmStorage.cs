using Kvm.Agent.Host;
using Kvm.Agent.Qemu;
using Kvm.Model;

namespace Kvm.Agent.Storage;

/// <summary>
/// The VM lifecycle's view of storage: where a VM's disks, ISOs and EFI variable store live, and the
/// idempotent host changes that make them exist. Implemented by the storage feature; called by the VM
/// feature. Failures are <c>AgentProblemException</c>s with attribute paths where the user can fix them.
/// </summary>
public interface IVmStorage
{
    /// <summary>
    /// Resolves every disk and CD-ROM of <paramref name="spec"/> to files: inline disks at their pool path
    /// (<c>vm-{vmId}-disk-{slot}.{format}</c>), volumes and ISOs by <c>volume_id</c>. Refuses a volume that
    /// does not exist or that another VM uses. No host changes.
    /// </summary>
    Task<(IReadOnlyDictionary<string, DiskFile> Disks, IReadOnlyDictionary<string, string?> Cdroms)> ResolveAsync(
        long vmId, VmSpec spec, CancellationToken cancellationToken);

    /// <summary>
    /// Creates the inline disks that do not exist yet (never over an existing file) and grows those whose
    /// <c>size_gib</c> is now larger (offline; the VM is stopped). Returns the files it created so a failed
    /// create can remove exactly those.
    /// </summary>
    Task<IReadOnlyList<string>> EnsureInlineDisksAsync(long vmId, VmSpec spec, CancellationToken cancellationToken);

    /// <summary>
    /// Undoes one entry of what <see cref="EnsureInlineDisksAsync"/> (or another create step) returned: deletes the file, or
    /// removes the thin logical volume when the path is a disk in an lvm-thin pool. Missing is fine.
    /// </summary>
    Task DiscardCreatedAsync(string path);

    /// <summary>Deletes the inline disks of a VM (volumes stay). Missing files are fine.</summary>
    Task RemoveInlineDisksAsync(long vmId, VmSpec spec, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the VM's EFI variable store at <paramref name="path"/> from the template the spec asks for
    /// (temp file + fsync + rename; an existing store is kept). Returns true when it created one.
    /// </summary>
    Task<bool> EnsureEfiVarsAsync(VmSpec spec, HostFacts facts, string path, CancellationToken cancellationToken);
}

/// <summary>Which VMs use which volumes: implemented by the VM store, read by the volume feature.</summary>
public interface IVolumeUsage
{
    /// <summary>Every (vm_id, slot, volume_id) where a VM's disk or CD-ROM refers to a volume.</summary>
    IReadOnlyList<(long VmId, string Slot, string VolumeId)> VolumeUses();
}
