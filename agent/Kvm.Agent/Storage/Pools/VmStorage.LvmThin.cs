using Kvm.Agent.Problems;
using Kvm.Agent.Storage.Pools;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Storage;

/// <summary>
/// Inline disks in <c>lvm-thin</c> pools: a thin logical volume <c>vm-{id}-disk-{slot}.raw</c> made with lvcreate (from an
/// image: lvcreate, then <c>qemu-img convert -n</c> into it), grown with lvextend, removed with lvremove. QEMU opens it as a
/// host block device.
/// </summary>
public sealed partial class VmStorage
{
    private static bool IsLvmThin(PoolDir pool) => pool.Spec.Type == "lvm-thin";

    private static string CloneIntoLvmThin(PoolDir pool) =>
        $"storage pool \"{pool.Name}\" is lvm-thin; a clone's disks are copied into image files, so they need a dir or nfs pool.";

    /// <summary>Adds a problem for what an inline disk on this pool cannot be.</summary>
    private static void CheckPoolFits(PoolDir pool, DiskSpec disk, AttrPath at, List<ProblemError> errors)
    {
        if (!StoragePools.IsReady(pool))
            errors.Add(new ProblemError(at.Attr("pool").ToString(), $"nfs storage pool \"{pool.Name}\" is not mounted at {pool.Path}."));
        if (!IsLvmThin(pool))
            return;
        try
        {
            Volumes.CheckLvmThinSpec(pool, disk.Format, disk.Preallocation, at);
        }
        catch (AgentProblemException e) when (e.Errors is not null)
        {
            errors.AddRange(e.Errors);
        }
        if (disk.LinkedClone == true)
            errors.Add(new ProblemError(at.Attr("linked_clone").ToString(),
                $"storage pool \"{pool.Name}\" is lvm-thin: a linked clone is a qcow2 overlay; use a full copy (linked_clone = false) or a dir pool."));
    }

    /// <summary>Creates or grows one lvm-thin inline disk; true when it created the logical volume.</summary>
    private async Task<bool> EnsureLvmThinDiskAsync(InlineDisk disk, CancellationToken cancellationToken)
    {
        var (vg, thin) = (disk.Pool.Spec.VolumeGroup!, disk.Pool.Spec.ThinPool!);
        var name = Path.GetFileName(disk.Path);
        var existing = (await pools.ThinVolumesAsync(disk.Pool, cancellationToken)).FirstOrDefault(l => l.Name == name);
        if (existing is not null)
        {
            if (disk.Bytes is { } grow && existing.SizeBytes < grow)
                await pools.RunLvmAsync(LvmCommands.Extend(vg, name, grow), cancellationToken);
            return false;
        }
        long bytes;
        Images.ImageFile? image = null;
        if (disk.ImageId is not null)
        {
            var at = AttrPath.Parse(disk.Attribute);
            image = services.GetService<Images.Images>()?.Find(disk.ImageId)
                ?? throw AgentProblemException.Invalid(at.Attr("image_id").ToString(), $"no image \"{disk.ImageId}\".");
            if (disk.Bytes is { } asked && asked < image.VirtualSize)
                throw AgentProblemException.Invalid(at.Attr("size_gib").ToString(),
                    $"{asked / GiB} GiB is smaller than image \"{image.ImageId}\"; a disk can only be as large as its image or larger.");
            bytes = Math.Max(disk.Bytes ?? 0, image.VirtualSize);
        }
        else
        {
            bytes = disk.Bytes!.Value;
        }
        await pools.RunLvmAsync(LvmCommands.CreateThin(vg, thin, name, bytes), cancellationToken);
        if (image is null)
            return true;
        try
        {
            // -n: the target exists (the logical volume); qemu-img writes into it and never creates a file.
            await qemuImg.ConvertAsync(image.Path, image.Format, disk.Path, "raw", cancellationToken, targetExists: true);
        }
        catch
        {
            await pools.RunLvmAsync(LvmCommands.Remove(vg, name), CancellationToken.None);
            throw;
        }
        return true;
    }

    /// <inheritdoc />
    public async Task DiscardCreatedAsync(string path)
    {
        var directory = Path.GetDirectoryName(path);
        if (pools.All().FirstOrDefault(p => IsLvmThin(p) && p.Path == directory) is { } pool)
        {
            await RemoveLvmThinDiskAsync(pool, Path.GetFileName(path), CancellationToken.None);
            return;
        }
        SafeFile.DeleteQuietly(path);
    }

    /// <summary>Removes an lvm-thin inline disk when it exists.</summary>
    private async Task RemoveLvmThinDiskAsync(PoolDir pool, string name, CancellationToken cancellationToken)
    {
        if ((await pools.ThinVolumesAsync(pool, cancellationToken)).Any(l => l.Name == name))
            await pools.RunLvmAsync(LvmCommands.Remove(pool.Spec.VolumeGroup!, name), cancellationToken);
    }
}
