using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Agent.Storage;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Vms;

/// <summary>
/// Templates and clones, as Proxmox has them: a template is never started and its disks are read-only bases; a clone's inline
/// disks start as full copies of the source's disks or as qcow2 overlays on a template's disks (linked). Only disk content comes
/// from the source; every setting comes from the clone's own spec. A template with linked clones cannot be deleted.
/// </summary>
public sealed class VmClones(VmStore store, VmRuntime runtime, VmLocks locks, IServiceProvider services)
{
    private const long GiB = 1L << 30;

    private IVmStorage? Storage => services.GetService<IVmStorage>();

    /// <summary>The linked clones of a template, as <c>vm_id</c>s.</summary>
    public IReadOnlyList<long> LinkedClonesOf(long templateId) =>
    [
        .. store.All.Where(v => v.Spec.Clone is { } c && c.SourceVmId == templateId && IsLinked(c, store.Find(templateId)?.Spec))
            .Select(v => v.VmId).Order()
    ];

    /// <summary>Refuses to delete a template whose disks back linked clones (like deleting an image that linked clones use).</summary>
    public void RefuseDeleteWhileLinked(long vmId)
    {
        if (LinkedClonesOf(vmId) is { Count: > 0 } clones)
            throw AgentProblemException.Conflict(
                $"VM {vmId} is a template whose disks back the linked clones {string.Join(", ", clones)}; delete those first (or make them full clones).");
    }

    /// <summary>Refuses to start a template.</summary>
    public static void RefuseStart(StoredVm stored)
    {
        if (stored.Spec.Template == true)
            throw AgentProblemException.InvalidState($"VM {stored.VmId} is a template and is never started; clone it instead.");
    }

    /// <summary>
    /// Makes a new clone's inline disks from the source's (the caller holds the clone's lock; the source's is taken here so it
    /// cannot start during a copy). Returns the files it created.
    /// </summary>
    public async Task<IReadOnlyList<string>> CreateDisksAsync(long vmId, VmSpec spec, CancellationToken cancellationToken)
    {
        var clone = spec.Clone!;
        var at = AttrPath.Root.Attr("clone");
        var sourceId = clone.SourceVmId!.Value;
        if (store.Find(sourceId) is null)
            throw AgentProblemException.Invalid(at.Attr("source_vm_id").ToString(), $"there is no VM {sourceId} on this host.");
        var storage = Storage ?? throw AgentProblemException.Invalid(at.ToString(), "storage is not configured on this agent.");
        var qemuImg = services.GetRequiredService<QemuImg>();
        using var held = await locks.AcquireAsync(sourceId, cancellationToken);
        var source = store.Get(sourceId);
        var linked = IsLinked(clone, source.Spec);
        var isTemplate = source.Spec.Template == true;
        if (linked && !isTemplate)
            throw AgentProblemException.Invalid(at.Attr("linked").ToString(),
                $"VM {sourceId} is not a template; a linked clone needs one (set template = true on it), or make a full clone.");
        if (!isTemplate && runtime.IsUp(sourceId))
            throw AgentProblemException.InvalidState(
                $"VM {sourceId} is {runtime.StatusOf(sourceId)}; a full clone of a VM that is not a template copies its disks while it is stopped, so stop it first.");

        var (sourceDisks, _) = await storage.ResolveAsync(sourceId, source.Spec, cancellationToken);
        var (targets, _) = await storage.ResolveAsync(vmId, spec, cancellationToken);
        var effective = Defaults.Apply(spec);
        var errors = new List<ProblemError>();
        var plan = new List<(string Slot, DiskFile From, DiskFile To, long? Bytes)>();
        foreach (var (slot, disk) in effective.Disks ?? [])
        {
            if (disk.VolumeId is not null || !sourceDisks.TryGetValue(slot, out var from))
                continue;
            var diskAt = AttrPath.Root.Attr("disks").Key(slot);
            if (disk.ImageId is not null)
            {
                errors.Add(new ProblemError(diskAt.Attr("image_id").ToString(), $"slot {slot} is cloned from VM {sourceId}; it cannot also start from an image."));
                continue;
            }
            if (linked && (disk.Format != "qcow2"))
                errors.Add(new ProblemError(diskAt.Attr("format").ToString(), "a linked clone's disk is a qcow2 overlay: needs format \"qcow2\"."));
            var info = await qemuImg.InfoAsync(from.Path, from.Format, cancellationToken);
            if (disk.SizeGib is { } size && size * GiB < info.VirtualSize)
                errors.Add(new ProblemError(diskAt.Attr("size_gib").ToString(),
                    $"{size} GiB is smaller than disk {slot} of VM {sourceId} ({info.VirtualSize / (double)GiB:0.##} GiB); a clone's disk can only be as large or larger."));
            plan.Add((slot, from, targets[slot], disk.SizeGib * GiB));
        }
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors);
        var created = new List<string>();
        try
        {
            foreach (var (_, from, to, bytes) in plan)
            {
                if (await qemuImg.CreateFromImageAsync(to.Path, to.Format, from.Path, from.Format, linked, bytes, cancellationToken))
                    created.Add(to.Path);
            }
        }
        catch
        {
            foreach (var path in created)
                SafeFile.DeleteQuietly(path);
            throw;
        }
        return created;
    }

    /// <summary>Linked unless said otherwise when the source is a template, as Proxmox does.</summary>
    private static bool IsLinked(CloneSpec clone, VmSpec? source) => clone.Linked ?? (source?.Template == true);
}
