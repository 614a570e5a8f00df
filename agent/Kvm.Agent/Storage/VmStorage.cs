using Kvm.Agent.Host;
using Kvm.Agent.Images;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Storage;

/// <summary>
/// Storage as the VM lifecycle sees it: inline disks (<c>vm-{id}-disk-{slot}.{format}</c> in their pool),
/// volumes and ISOs by <c>volume_id</c>, and the per-VM EFI variable store copied from an OVMF template. An inline disk
/// with <c>image_id</c> starts as a full copy of the image or a qcow2 overlay on it; after that it is an inline disk like any other.
/// </summary>
public sealed partial class VmStorage(StoragePools pools, Volumes volumes, QemuImg qemuImg, IServiceProvider services) : IVmStorage
{
    private const long GiB = 1L << 30;

    private readonly KeyedLocks _locks = new();

    /// <inheritdoc />
    public async Task<(IReadOnlyDictionary<string, DiskFile> Disks, IReadOnlyDictionary<string, string?> Cdroms)> ResolveAsync(
        long vmId, VmSpec spec, CancellationToken cancellationToken)
    {
        var effective = Defaults.Apply(spec);
        var errors = new List<ProblemError>();
        var conflicts = new List<string>();
        var otherUses = (services.GetService<IVolumeUsage>()?.VolumeUses() ?? []).Where(u => u.VmId != vmId).ToList();
        var disks = new SortedDictionary<string, DiskFile>(StringComparer.Ordinal);
        foreach (var (slot, disk) in effective.Disks ?? [])
        {
            var at = AttrPath.Root.Attr("disks").Key(slot);
            if (disk.HostDevice is not null)
            {
                if (HostDeviceFile(vmId, slot, disk, at, errors, conflicts) is { } device)
                    disks[slot] = device;
                continue;
            }
            if (disk.VolumeId is null)
            {
                if (Inline(vmId, slot, disk, at, errors) is { } inline)
                {
                    if (IsLvmThin(inline.Pool) && effective.Clone is not null)
                        errors.Add(new ProblemError(at.Attr("pool").ToString(), CloneIntoLvmThin(inline.Pool)));
                    disks[slot] = new DiskFile(inline.Path, inline.Format, HostDevice: IsLvmThin(inline.Pool));
                }
                continue;
            }
            var volume = await FindAsync(disk.VolumeId, at.Attr("volume_id"), errors, cancellationToken);
            if (volume is null)
                continue;
            var users = otherUses.Where(u => u.VolumeId == volume.VolumeId).Select(u => $"{u.VmId}/{u.Slot}").ToList();
            if (users.Count > 0)
                conflicts.Add($"{at}: volume \"{volume.VolumeId}\" is in use by {string.Join(", ", users)}.");
            disks[slot] = new DiskFile(volume.Path, volume.Info.Format, HostDevice: IsLvmThin(volume.Pool));
        }
        var cdroms = new SortedDictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (slot, cdrom) in effective.Cdroms ?? [])
        {
            // ISOs are read-only media: several VMs may share one.
            if (cdrom.VolumeId is null)
                cdroms[slot] = null;
            else if (await FindAsync(cdrom.VolumeId, AttrPath.Root.Attr("cdroms").Key(slot).Attr("volume_id"), errors, cancellationToken) is { } iso)
                cdroms[slot] = iso.Path;
        }
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors);
        if (conflicts.Count > 0)
            throw AgentProblemException.Conflict(string.Join(" ", conflicts));
        return (disks, cdroms);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> EnsureInlineDisksAsync(long vmId, VmSpec spec, CancellationToken cancellationToken)
    {
        var effective = Defaults.Apply(spec);
        var errors = new List<ProblemError>();
        var inline = (effective.Disks ?? [])
            .Where(d => d.Value.VolumeId is null && d.Value.HostDevice is null)
            .OrderBy(d => d.Key, StringComparer.Ordinal)
            .Select(d => Inline(vmId, d.Key, d.Value, AttrPath.Root.Attr("disks").Key(d.Key), errors))
            .ToList();
        CheckHostDevices(effective, errors);
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors);
        var created = new List<string>();
        var createdVolumes = new List<(PoolDir Pool, string Name)>();
        try
        {
            foreach (var disk in inline)
            {
                var (path, format, size, preallocation, pool) = disk!;
                using var held = await _locks.AcquireAsync(path, cancellationToken);
                if (IsLvmThin(pool))
                {
                    // Returned too: the caller's rollback undoes it through DiscardCreatedAsync (lvremove, not unlink).
                    if (await EnsureLvmThinDiskAsync(disk, cancellationToken))
                        createdVolumes.Add((pool, Path.GetFileName(path)));
                    continue;
                }
                if (!SafeFile.EntryExists(path))
                {
                    if (disk.ImageId is not null ? await CreateFromImageAsync(disk, cancellationToken) : await CreateEmptyAsync(disk, cancellationToken))
                    {
                        created.Add(path);
                        continue;
                    }
                }
                CheckInside(pool, path, disk.Attribute);
                if (size is not { } bytes)
                    continue;
                var info = await qemuImg.InfoAsync(path, format, cancellationToken);
                if (info.VirtualSize < bytes)
                {
                    Volumes.CheckSpace(pool, Path.GetFileName(path), bytes - info.VirtualSize, preallocation);
                    await qemuImg.ResizeAsync(path, format, bytes, preallocation, cancellationToken);
                }
                volumes.Invalidate(path);
            }
        }
        catch
        {
            // The caller only learns what we created from the return value; on failure we undo it ourselves.
            foreach (var path in created)
                SafeFile.DeleteQuietly(path);
            foreach (var (pool, name) in createdVolumes)
                await RemoveLvmThinDiskAsync(pool, name, CancellationToken.None);
            throw;
        }
        return [.. created, .. createdVolumes.Select(v => Path.Combine(v.Pool.Path, v.Name))];
    }

    /// <inheritdoc />
    public async Task RemoveInlineDisksAsync(long vmId, VmSpec spec, CancellationToken cancellationToken)
    {
        var effective = Defaults.Apply(spec);
        foreach (var (slot, disk) in effective.Disks ?? [])
        {
            if (disk.VolumeId is not null || disk.HostDevice is not null || pools.Find(disk.Pool) is not { } pool || !QemuImg.Formats.Contains(disk.Format!))
                continue;
            if (IsLvmThin(pool))
            {
                await RemoveLvmThinDiskAsync(pool, Volumes.InlineDiskName(vmId, slot, disk.Format!), cancellationToken);
                continue;
            }
            // unlink() removes a link itself, never what it points to: no containment check needed here.
            var path = Path.Combine(pool.Path, Volumes.InlineDiskName(vmId, slot, disk.Format!));
            if (SafeFile.EntryExists(path))
            {
                File.Delete(path);
                SafeFile.FsyncDirectory(pool.Path);
            }
            volumes.Invalidate(path);
        }
    }

    /// <inheritdoc />
    public Task<bool> EnsureEfiVarsAsync(VmSpec spec, HostFacts facts, string path, CancellationToken cancellationToken)
    {
        var firmware = Defaults.Apply(spec).Firmware;
        if (firmware?.Type != "uefi" || SafeFile.EntryExists(path))
            return Task.FromResult(false);
        var template = firmware.EfiVars?.Template ?? "4m";
        var enrolled = firmware.EfiVars?.PreEnrolledKeys ?? firmware.SecureBoot ?? false;
        var at = AttrPath.Root.Attr("firmware").Attr("efi_vars");
        var source = (template, enrolled) switch
        {
            // The distribution's template with Microsoft's 2023 certificates added next to its 2011 ones.
            ("4m", true) => facts.Ovmf.Vars4MEnrolled is { } ms ? Firmware.MicrosoftKeys.EnsureTemplate(ms, services.GetRequiredService<StorageOptions>().DataDir) : null,
            ("4m", false) => facts.Ovmf.Vars4M,
            ("2m", false) => facts.Ovmf.Vars2M,
            _ => throw AgentProblemException.Invalid(at.Attr("pre_enrolled_keys").ToString(),
                "there is no 2m OVMF variable store with enrolled keys; use template \"4m\" or pre_enrolled_keys = false."),
        };
        if (source is null)
            throw AgentProblemException.Invalid(at.Attr("template").ToString(),
                $"this host has no {template} OVMF variable store template{(enrolled ? " with enrolled keys" : "")} (install the OVMF package).");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return Task.FromResult(SafeFile.CopyNew(source, path));
    }

    private sealed record InlineDisk(string Path, string Format, long? Bytes, string Preallocation, PoolDir Pool)
    {
        public required string Attribute { get; init; }
        public string? ImageId { get; init; }
        public bool LinkedClone { get; init; }
    }

    private async Task<bool> CreateEmptyAsync(InlineDisk disk, CancellationToken cancellationToken)
    {
        Volumes.CheckSpace(disk.Pool, Path.GetFileName(disk.Path), disk.Bytes!.Value, disk.Preallocation);
        return await qemuImg.CreateAsync(disk.Path, disk.Format, disk.Bytes.Value, disk.Preallocation, cancellationToken);
    }

    private async Task<bool> CreateFromImageAsync(InlineDisk disk, CancellationToken cancellationToken)
    {
        var at = AttrPath.Parse(disk.Attribute);
        var images = services.GetService<Images.Images>()
            ?? throw AgentProblemException.Invalid(at.Attr("image_id").ToString(), "this agent has no image feature.");
        var image = images.Find(disk.ImageId!)
            ?? throw AgentProblemException.Invalid(at.Attr("image_id").ToString(), $"no image \"{disk.ImageId}\".");
        if (disk.Bytes is { } bytes && bytes < image.VirtualSize)
            throw AgentProblemException.Invalid(at.Attr("size_gib").ToString(),
                $"{bytes / GiB} GiB is smaller than image \"{image.ImageId}\" ({image.VirtualSize / (double)GiB:0.##} GiB); a disk can only be as large as its image or larger.");
        return await qemuImg.CreateFromImageAsync(disk.Path, disk.Format, image.Path, image.Format, disk.LinkedClone, disk.Bytes, cancellationToken);
    }

    private InlineDisk? Inline(long vmId, string slot, DiskSpec disk, AttrPath at, List<ProblemError> errors)
    {
        if (pools.Find(disk.Pool) is not { } pool)
        {
            errors.Add(new ProblemError(at.Attr("pool").ToString(), $"no storage pool named \"{disk.Pool}\"."));
            return null;
        }
        if (!QemuImg.Formats.Contains(disk.Format!) || (disk.SizeGib is null && disk.ImageId is null))
        {
            errors.Add(new ProblemError(at.ToString(), "an inline disk needs size_gib (or image_id) and a format qcow2, raw or vmdk."));
            return null;
        }
        var fits = errors.Count;
        CheckPoolFits(pool, disk, at, errors);
        if (errors.Count > fits)
            return null;
        var path = Path.Combine(pool.Path, Volumes.InlineDiskName(vmId, slot, disk.Format!));
        return new InlineDisk(path, disk.Format!, disk.SizeGib * GiB, disk.Preallocation!, pool)
        {
            Attribute = at.ToString(),
            ImageId = disk.ImageId,
            LinkedClone = disk.LinkedClone == true,
        };
    }

    private async Task<VolumeFile?> FindAsync(string volumeId, AttrPath at, List<ProblemError> errors, CancellationToken cancellationToken)
    {
        try
        {
            var volume = await volumes.FindAsync(volumeId, at.ToString(), cancellationToken);
            if (volume is null)
                errors.Add(new ProblemError(at.ToString(), $"no volume \"{volumeId}\"."));
            return volume;
        }
        catch (AgentProblemException e) when (e.Errors is not null)
        {
            errors.AddRange(e.Errors);
            return null;
        }
    }

    private static void CheckInside(PoolDir pool, string path, string attribute)
    {
        var real = SafeFile.RealPath(path);
        if (real is null || !SafeFile.IsWithin(real, SafeFile.RealPath(pool.Path) ?? pool.Path))
            throw AgentProblemException.Invalid(attribute, $"{path} is a link that points outside storage pool \"{pool.Name}\"; the agent does not follow it.");
    }
}
