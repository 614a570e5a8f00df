using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kvm.Agent.Problems;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Agent.Storage;

/// <summary>A volume file found in a pool, with what the user set on it (or what the file says, for files we did not create).</summary>
public sealed record VolumeFile(PoolDir Pool, string Name, string Path, VolumeSpec Spec, ImageInfo Info)
{
    /// <summary><c>&lt;pool&gt;/&lt;name&gt;</c>.</summary>
    public string VolumeId => Pool.Name + "/" + Name;
}

/// <summary>
/// Standalone volumes: the image files in the pools' directories. Volumes created through the API keep what
/// the user set in <c>&lt;data-dir&gt;/volumes/&lt;pool&gt;/&lt;name&gt;.json</c>; other files (an ISO an operator
/// copied in) are volumes too, described from <c>qemu-img info</c>. VMs' inline disks live in the same
/// directories but belong to their VM and are not volumes.
/// </summary>
public sealed partial class Volumes(StoragePools pools, QemuImg qemuImg, StorageOptions options, IServiceProvider services)
{
    private const long GiB = 1L << 30;

    private readonly KeyedLocks _locks = new();
    private readonly ConcurrentDictionary<string, CachedInfo> _infos = new(StringComparer.Ordinal);

    /// <summary>File name of a VM's inline disk: <c>vm-{vmId}-disk-{slot}.{format}</c>.</summary>
    public static string InlineDiskName(long vmId, string slot, string format) => $"vm-{vmId}-disk-{slot}.{format}";

    /// <summary>True for names of VMs' inline disks, which the volume API neither lists nor creates.</summary>
    public static bool IsInlineDiskName(string name) => InlineDiskPattern().IsMatch(name);

    /// <summary>Every volume, or those of one pool.</summary>
    public async Task<List<Volume>> ListAsync(string? pool, CancellationToken cancellationToken)
    {
        IEnumerable<PoolDir> selected = pools.All();
        if (pool is not null)
        {
            StoragePools.CheckName(pool, "pool");
            selected = [pools.Find(pool) ?? throw AgentProblemException.NotFound($"No storage pool named \"{pool}\".")];
        }
        var uses = Uses();
        var result = new List<Volume>();
        foreach (var p in selected)
        {
            if (p.Spec.Type == "lvm-thin")
            {
                try
                {
                    result.AddRange(await ListLvmThinAsync(p, uses, cancellationToken));
                }
                catch (AgentProblemException) when (pool is null)
                {
                    // A volume group that cannot be listed hides its volumes from the list of all; GET on the pool's says why.
                }
                continue;
            }
            if (!Directory.Exists(p.Path) || !StoragePools.IsReady(p))
                continue;
            foreach (var entry in Directory.EnumerateFiles(p.Path).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(entry);
                if (!Validator.Matches(Patterns.VolumeName, name) || IsInlineDiskName(name))
                    continue;
                try
                {
                    if (await LoadAsync(p, name, "name", cancellationToken) is { } file)
                        result.Add(Describe(file, uses));
                }
                catch (AgentProblemException)
                {
                    // A file that escapes its pool or that qemu-img cannot read is not listed; GET on it says why.
                }
            }
        }
        return result;
    }

    /// <summary>One volume and its ETag.</summary>
    public async Task<(Volume Volume, string ETag)> GetAsync(string pool, string name, CancellationToken cancellationToken)
    {
        var file = await RequireAsync(pool, name, cancellationToken);
        return (Describe(file, Uses()), ETagOf(file));
    }

    /// <summary>Creates a volume; never over an existing file.</summary>
    public async Task<Volume> CreateAsync(VolumeSpec spec, CancellationToken cancellationToken)
    {
        ThrowIfInvalid(Validator.Validate(spec));
        var effective = Defaults.Apply(spec);
        var name = effective.Name!;
        if (IsInlineDiskName(name))
            throw AgentProblemException.Invalid("name", $"\"{name}\" has the form of a VM's inline disk (vm-<id>-disk-<slot>.<format>); choose another name.");
        var pool = pools.Find(effective.Pool) ?? throw AgentProblemException.Invalid("pool", $"No storage pool named \"{effective.Pool}\".");
        var path = Path.Combine(pool.Path, name);
        if (!StoragePools.IsReady(pool))
            throw AgentProblemException.InvalidState($"nfs storage pool \"{pool.Name}\" is not mounted at {pool.Path}.");
        using (await _locks.AcquireAsync(path, cancellationToken))
        {
            if (pool.Spec.Type == "lvm-thin")
            {
                await CreateLvmThinAsync(pool, spec, effective, cancellationToken);
                return (await GetAsync(pool.Name, name, cancellationToken)).Volume;
            }
            if (SafeFile.EntryExists(path))
                throw AgentProblemException.Conflict($"Volume \"{pool.Name}/{name}\" exists already.");
            var bytes = effective.SizeGib!.Value * GiB;
            CheckSpace(pool, name, bytes, effective.Preallocation!);
            if (!await qemuImg.CreateAsync(path, effective.Format!, bytes, effective.Preallocation!, cancellationToken))
                throw AgentProblemException.Conflict($"Volume \"{pool.Name}/{name}\" exists already.");
            try
            {
                WriteDefinition(pool.Name, name, spec);
            }
            catch
            {
                SafeFile.DeleteQuietly(path);
                throw;
            }
            _infos.TryRemove(path, out _);
        }
        var (volume, _) = await GetAsync(pool.Name, name, cancellationToken);
        return volume;
    }

    /// <summary>Applies an update: only growing is possible in place; anything else needs a new volume.</summary>
    public async Task<Volume> UpdateAsync(string pool, string name, VolumeSpec spec, string? ifMatch, CancellationToken cancellationToken)
    {
        ThrowIfInvalid(Validator.Validate(spec));
        var path = PathOf(pool, name);
        using (await _locks.AcquireAsync(path, cancellationToken))
        {
            var file = await RequireAsync(pool, name, cancellationToken);
            ModelHttp.CheckIfMatch(ifMatch, ETagOf(file));
            // The URL names the volume; a body naming another one is a rename, which is a new volume.
            var before = file.Spec;
            var replace = Changes.Classify(before, spec).Where(c => c.Kind == UpdateKind.Replace).Select(c => c.Attribute).ToList();
            if (Defaults.Apply(spec).Pool != pool && !replace.Contains("pool"))
                replace.Add("pool");
            if (replace.Count > 0)
                throw new AgentProblemException(409, ProblemTypes.RequiresReplacement, "Requires replacement",
                    $"Changing {string.Join(", ", replace)} of volume \"{pool}/{name}\" needs a new volume.",
                    [.. replace.Select(a => new ProblemError(a, "cannot change in place; the volume must be re-created."))]);
            ThrowIfInvalid(spec.ValidateUpdate(before));
            var bytes = spec.SizeGib!.Value * GiB;
            if (bytes > file.Info.VirtualSize)
            {
                var resizer = services.GetService<IOnlineResizer>();
                if (file.Pool.Spec.Type == "lvm-thin")
                {
                    // The logical volume grows first; a running VM then learns the new size through its resizer.
                    await pools.RunLvmAsync(Pools.LvmCommands.Extend(file.Pool.Spec.VolumeGroup!, name, bytes), cancellationToken);
                    if (resizer is not null)
                        await resizer.TryGrowAsync(file.VolumeId, path, bytes, cancellationToken);
                }
                else if (resizer is null || !await resizer.TryGrowAsync(file.VolumeId, path, bytes, cancellationToken))
                {
                    var preallocation = Defaults.Apply(spec).Preallocation;
                    if (preallocation is "falloc" or "full")
                        CheckSpace(file.Pool, name, bytes - file.Info.VirtualSize, preallocation);
                    await qemuImg.ResizeAsync(path, file.Info.Format, bytes, preallocation, cancellationToken);
                }
                _infos.TryRemove(path, out _);
            }
            WriteDefinition(pool, name, spec);
        }
        var (volume, _) = await GetAsync(pool, name, cancellationToken);
        return volume;
    }

    /// <summary>Deletes a volume that no VM uses.</summary>
    public async Task DeleteAsync(string pool, string name, string? ifMatch, CancellationToken cancellationToken)
    {
        var path = PathOf(pool, name);
        using (await _locks.AcquireAsync(path, cancellationToken))
        {
            var file = await RequireAsync(pool, name, cancellationToken);
            ModelHttp.CheckIfMatch(ifMatch, ETagOf(file));
            var users = Uses().GetValueOrDefault(file.VolumeId);
            if (users is { Count: > 0 })
                throw AgentProblemException.Conflict($"Volume \"{file.VolumeId}\" is attached to {string.Join(", ", users)}; detach it first.");
            if (file.Pool.Spec.Type == "lvm-thin")
            {
                await pools.RunLvmAsync(Pools.LvmCommands.Remove(file.Pool.Spec.VolumeGroup!, name), cancellationToken);
            }
            else
            {
                File.Delete(path);
                SafeFile.FsyncDirectory(file.Pool.Path);
            }
            _infos.TryRemove(path, out _);
            var definition = DefinitionPath(pool, name);
            if (File.Exists(definition))
                File.Delete(definition);
        }
    }

    /// <summary>
    /// The volume a VM refers to by <paramref name="volumeId"/>, or null when there is none; refuses (422 at
    /// <paramref name="attribute"/>) a file that escapes its pool.
    /// </summary>
    public async Task<VolumeFile?> FindAsync(string volumeId, string attribute, CancellationToken cancellationToken)
    {
        var slash = volumeId.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !Validator.Matches(Patterns.VolumeId, volumeId))
            throw AgentProblemException.Invalid(attribute, $"\"{Validator.Printable(volumeId)}\" is not valid: expected {Patterns.VolumeIdText}.");
        var name = volumeId[(slash + 1)..];
        if (IsInlineDiskName(name) || pools.Find(volumeId[..slash]) is not { } pool)
            return null;
        return await LoadAsync(pool, name, attribute, cancellationToken);
    }

    /// <summary>Forgets cached image facts for a file the caller changed.</summary>
    public void Invalidate(string path) => _infos.TryRemove(path, out _);

    private async Task<VolumeFile> RequireAsync(string pool, string name, CancellationToken cancellationToken)
    {
        var path = PathOf(pool, name);
        var p = pools.Find(pool) ?? throw AgentProblemException.NotFound($"No storage pool named \"{pool}\".");
        if (IsInlineDiskName(name))
            throw AgentProblemException.NotFound($"\"{name}\" is a VM's inline disk, not a volume.");
        return await LoadAsync(p, name, "name", cancellationToken)
            ?? throw AgentProblemException.NotFound($"No volume \"{pool}/{name}\" ({path}).");
    }

    private async Task<VolumeFile?> LoadAsync(PoolDir pool, string name, string attribute, CancellationToken cancellationToken)
    {
        if (pool.Spec.Type == "lvm-thin")
            return await LoadLvmThinAsync(pool, name, cancellationToken);
        var path = Path.Combine(pool.Path, name);
        if (!SafeFile.EntryExists(path))
            return null;
        var real = SafeFile.RealPath(path);
        var poolReal = SafeFile.RealPath(pool.Path) ?? pool.Path;
        if (real is null || !SafeFile.IsWithin(real, poolReal) || real == poolReal)
            throw AgentProblemException.Invalid(attribute, $"{path} is a link that points outside storage pool \"{pool.Name}\"; the agent does not follow it.");
        if (Directory.Exists(real))
            return null;
        var definition = ReadDefinition(pool.Name, name);
        var format = definition is not null ? Defaults.Apply(definition).Format
            : name.EndsWith(".iso", StringComparison.OrdinalIgnoreCase) ? "raw" : null;
        var info = await InfoAsync(path, real, format, cancellationToken);
        var spec = definition ?? new VolumeSpec
        {
            Name = name,
            Pool = pool.Name,
            SizeGib = (info.VirtualSize + GiB - 1) / GiB,
            Format = info.Format,
        };
        return new VolumeFile(pool, name, path, spec, info);
    }

    private async Task<ImageInfo> InfoAsync(string path, string real, string? format, CancellationToken cancellationToken)
    {
        // qemu-img costs a process per file; a file that did not change since the last look has the same header.
        var stat = new FileInfo(real);
        var key = (stat.LastWriteTimeUtc, stat.Length, format);
        if (_infos.TryGetValue(path, out var cached) && cached.Key == key)
            return cached.Info;
        var info = await qemuImg.InfoAsync(path, format, cancellationToken);
        _infos[path] = new CachedInfo(key, info);
        return info;
    }

    private static Volume Describe(VolumeFile file, IReadOnlyDictionary<string, List<string>> uses) => new()
    {
        Name = file.Spec.Name,
        Pool = file.Spec.Pool,
        SizeGib = file.Spec.SizeGib,
        Format = file.Spec.Format,
        Preallocation = file.Spec.Preallocation,
        VolumeId = file.VolumeId,
        Path = file.Path,
        CapacityBytes = file.Info.VirtualSize,
        AllocationBytes = file.Info.ActualSize,
        AttachedTo = uses.GetValueOrDefault(file.VolumeId) ?? [],
    };

    // Over what the user set and the image's format and size: a running guest writing to the volume does not change it.
    private static string ETagOf(VolumeFile file) =>
        ModelHttp.ETagOf([
            .. JsonSerializer.SerializeToUtf8Bytes(file.Spec, ModelJsonContext.Default.VolumeSpec),
            .. Encoding.UTF8.GetBytes($"|{file.Info.Format}|{file.Info.VirtualSize}"),
        ]);

    private Dictionary<string, List<string>> Uses() =>
        (services.GetService<IVolumeUsage>()?.VolumeUses() ?? [])
            .GroupBy(u => u.VolumeId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(u => $"{u.VmId}/{u.Slot}").Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);

    /// <summary>Refuses (507) a preallocated image that does not fit in the pool now.</summary>
    internal static void CheckSpace(PoolDir pool, string name, long bytes, string preallocation)
    {
        // Thin images overcommit by design (a 20 GiB qcow2 fits on a 4 MiB file system); preallocated ones must fit now.
        if (preallocation is not ("falloc" or "full"))
            return;
        if (StoragePools.Available(pool) is { } available && available < bytes)
            throw AgentProblemException.NoSpace(
                $"Storage pool \"{pool.Name}\" has {available / (double)GiB:0.##} GiB free; {name} with preallocation {preallocation} needs {bytes / (double)GiB:0.##} GiB.");
    }

    private string PathOf(string pool, string name)
    {
        StoragePools.CheckName(pool, "pool");
        if (!Validator.Matches(Patterns.VolumeName, name))
            throw AgentProblemException.Invalid("name", $"\"{Validator.Printable(name)}\" is not a valid volume name: expected {Patterns.VolumeNameText}.");
        var p = pools.Find(pool) ?? throw AgentProblemException.NotFound($"No storage pool named \"{pool}\".");
        return Path.Combine(p.Path, name);
    }

    private string DefinitionPath(string pool, string name) => Path.Combine(options.VolumeDefinitionsDir, pool, name + ".json");

    private VolumeSpec? ReadDefinition(string pool, string name)
    {
        var path = DefinitionPath(pool, name);
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), ModelJsonContext.Default.VolumeSpec);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    private void WriteDefinition(string pool, string name, VolumeSpec spec) =>
        SafeFile.WriteAtomic(DefinitionPath(pool, name), JsonSerializer.SerializeToUtf8Bytes(spec, ModelJsonContext.Default.VolumeSpec));

    private static void ThrowIfInvalid(IReadOnlyList<ValidationError> errors)
    {
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
    }

    [GeneratedRegex("^vm-[0-9]+-disk-[a-z]+[0-9]+\\.(qcow2|raw|vmdk)$", RegexOptions.CultureInvariant)]
    private static partial Regex InlineDiskPattern();

    private sealed record CachedInfo((DateTime, long, string?) Key, ImageInfo Info);
}
