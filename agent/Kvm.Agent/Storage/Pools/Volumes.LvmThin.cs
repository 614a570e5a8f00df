using Kvm.Agent.Problems;
using Kvm.Agent.Storage.Pools;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Agent.Storage;

/// <summary>Volumes of <c>lvm-thin</c> pools: thin logical volumes, always raw, listed by <c>lvs</c> rather than from a directory.</summary>
public sealed partial class Volumes
{
    /// <summary>Refuses (422) what a thin logical volume cannot be: anything but raw, or preallocated.</summary>
    internal static void CheckLvmThinSpec(PoolDir pool, string? format, string? preallocation, AttrPath at)
    {
        var errors = new List<ProblemError>();
        if (format is not null and not "raw")
            errors.Add(new ProblemError(at.Attr("format").ToString(),
                $"storage pool \"{pool.Name}\" is lvm-thin: its volumes are raw thin logical volumes; set format = \"raw\" (\"{format}\" needs a dir or nfs pool)."));
        if (preallocation is not null and not "off")
            errors.Add(new ProblemError(at.Attr("preallocation").ToString(),
                $"storage pool \"{pool.Name}\" is lvm-thin: thin logical volumes allocate on write; preallocation must be \"off\"."));
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors);
    }

    private async Task<List<Volume>> ListLvmThinAsync(PoolDir pool, IReadOnlyDictionary<string, List<string>> uses, CancellationToken cancellationToken)
    {
        var result = new List<Volume>();
        foreach (var lv in (await pools.ThinVolumesAsync(pool, cancellationToken)).OrderBy(l => l.Name, StringComparer.Ordinal))
        {
            if (!Validator.Matches(Patterns.VolumeName, lv.Name) || IsInlineDiskName(lv.Name))
                continue;
            result.Add(Describe(LvmThinFile(pool, lv), uses));
        }
        return result;
    }

    private async Task<VolumeFile?> LoadLvmThinAsync(PoolDir pool, string name, CancellationToken cancellationToken)
    {
        var lv = (await pools.ThinVolumesAsync(pool, cancellationToken)).FirstOrDefault(l => l.Name == name);
        return lv is null ? null : LvmThinFile(pool, lv);
    }

    private VolumeFile LvmThinFile(PoolDir pool, LogicalVolume lv)
    {
        var spec = ReadDefinition(pool.Name, lv.Name) ?? new VolumeSpec
        {
            Name = lv.Name,
            Pool = pool.Name,
            SizeGib = (lv.SizeBytes + GiB - 1) / GiB,
            Format = "raw",
        };
        return new VolumeFile(pool, lv.Name, Path.Combine(pool.Path, lv.Name), spec, new ImageInfo("raw", lv.SizeBytes, lv.AllocatedBytes, null));
    }

    private async Task CreateLvmThinAsync(PoolDir pool, VolumeSpec spec, VolumeSpec effective, CancellationToken cancellationToken)
    {
        CheckLvmThinSpec(pool, spec.Format ?? "qcow2", spec.Preallocation, AttrPath.Root);
        var name = effective.Name!;
        if (await LoadLvmThinAsync(pool, name, cancellationToken) is not null)
            throw AgentProblemException.Conflict($"Volume \"{pool.Name}/{name}\" exists already.");
        await pools.RunLvmAsync(LvmCommands.CreateThin(pool.Spec.VolumeGroup!, pool.Spec.ThinPool!, name, effective.SizeGib!.Value * GiB), cancellationToken);
        try
        {
            WriteDefinition(pool.Name, name, spec);
        }
        catch
        {
            await pools.RunLvmAsync(LvmCommands.Remove(pool.Spec.VolumeGroup!, name), CancellationToken.None);
            throw;
        }
    }
}
