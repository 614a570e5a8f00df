using System.Text.Json;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Storage.Pools;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Agent.Storage;

/// <summary>
/// The <c>lvm-thin</c> and <c>nfs</c> pool types. An lvm-thin pool names an existing thin pool (the agent never creates
/// or removes volume groups or thin pools) and its volumes are thin logical volumes under <c>/dev/&lt;vg&gt;</c>. An nfs pool
/// is mounted by the agent at <c>&lt;data-dir&gt;/pools/&lt;name&gt;</c> and is a directory pool from then on. A type the host
/// cannot serve (<see cref="StoragePoolSupport"/>) is refused before anything changes.
/// </summary>
public sealed partial class StoragePools
{
    private static readonly TimeSpan LvmTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan MountTimeout = TimeSpan.FromSeconds(60);

    // Typed creates and deletes run host commands: one at a time, outside the pools lock.
    private readonly SemaphoreSlim _typedGate = new(1, 1);

    /// <summary>Where a pool's volumes are on the host: the directory, the nfs mount point, or /dev/&lt;vg&gt;.</summary>
    private string HostPathOf(StoragePoolSpec spec) => spec.Type switch
    {
        "lvm-thin" => "/dev/" + spec.VolumeGroup,
        "nfs" => System.IO.Path.Combine(_options.DataDir, "pools", spec.Name!),
        _ => spec.Path!,
    };

    /// <summary>Pool types this host can serve now, and what is missing for the others.</summary>
    public IReadOnlyDictionary<string, string?> Support() =>
        StoragePoolSupport.Evaluate(StoragePoolSupport.Read(_options.ProcDirectory, _options.ModulesDirectory, _options.ToolPath));

    /// <summary>Creates a pool of any type.</summary>
    public async Task<StoragePool> CreateAsync(StoragePoolSpec spec, CancellationToken cancellationToken)
    {
        var errors = Validator.Validate(spec);
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
        var type = spec.Type ?? "dir";
        if (type == "dir")
            return Create(spec);
        if (Support().GetValueOrDefault(type) is { } missing)
            throw AgentProblemException.Invalid("type", $"this host cannot serve \"{type}\" pools: {missing}.");
        await _typedGate.WaitAsync(cancellationToken);
        try
        {
            var name = spec.Name!;
            lock (_lock)
            {
                if (name == DefaultName)
                    throw AgentProblemException.Conflict("\"default\" is the built-in pool; choose another name.");
                if (_pools.ContainsKey(name))
                    throw AgentProblemException.Conflict($"A storage pool named \"{name}\" exists already.");
            }
            var stored = type == "lvm-thin"
                ? await PrepareLvmThinAsync(spec, cancellationToken)
                : await PrepareNfsAsync(spec, cancellationToken);
            var pool = new PoolDir(name, HostPathOf(stored), false, stored);
            lock (_lock)
            {
                SafeFile.WriteAtomic(DefinitionPath(name), JsonSerializer.SerializeToUtf8Bytes(stored, ModelJsonContext.Default.StoragePoolSpec));
                _pools[name] = pool;
            }
            return await DescribeAsync(pool, cancellationToken);
        }
        finally
        {
            _typedGate.Release();
        }
    }

    /// <summary>Deletes a pool of any type; an nfs pool is unmounted and its mount point removed.</summary>
    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
    {
        CheckName(name);
        var pool = Find(name) ?? throw AgentProblemException.NotFound($"No storage pool named \"{name}\".");
        if (pool.Spec.Type is not ("nfs" or "lvm-thin"))
        {
            Delete(name);
            return;
        }
        await _typedGate.WaitAsync(cancellationToken);
        try
        {
            if (pool.Spec.Type == "lvm-thin")
            {
                var held = (await ThinVolumesAsync(pool, cancellationToken)).Select(v => v.Name).Order(StringComparer.Ordinal).ToList();
                lock (_lock)
                    EnsureNoUsers(pool);
                if (held.Count > 0)
                    throw AgentProblemException.Conflict(
                        $"Storage pool \"{name}\" still holds {held.Count} thin volume(s): {string.Join(", ", held.Take(10))}{(held.Count > 10 ? ", …" : "")}.");
            }
            else
            {
                lock (_lock)
                    EnsureEmpty(pool);
                if (IsMounted(pool.Path))
                {
                    var result = await Runner.RunAsync(NfsCommands.Unmount(pool.Path), MountTimeout, cancellationToken);
                    if (!result.Ok)
                        throw AgentProblemException.InvalidState($"Cannot unmount {pool.Path}: {LastLine(result.StdErr)}");
                }
                try
                {
                    Directory.Delete(pool.Path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _logger.LogWarning("Could not remove the mount point {Path} of nfs pool {Name}: {Reason}", pool.Path, name, e.Message);
                }
            }
            lock (_lock)
            {
                File.Delete(DefinitionPath(name));
                SafeFile.FsyncDirectory(_options.PoolDefinitionsDir);
                _pools.Remove(name);
            }
        }
        finally
        {
            _typedGate.Release();
        }
    }

    /// <summary>A pool with its figures: statvfs for directories and nfs, the thin pool's size and use for lvm-thin.</summary>
    public async Task<StoragePool> DescribeAsync(PoolDir pool, CancellationToken cancellationToken)
    {
        var described = Describe(pool);
        described.VolumeGroup = pool.Spec.VolumeGroup;
        described.ThinPool = pool.Spec.ThinPool;
        described.Server = pool.Spec.Server;
        described.Export = pool.Spec.Export;
        described.MountOptions = pool.Spec.MountOptions;
        if (pool.Spec.Type == "nfs" && !IsMounted(pool.Path))
            (described.CapacityBytes, described.AvailableBytes) = (null, null);
        if (pool.Spec.Type == "lvm-thin")
        {
            (described.CapacityBytes, described.AvailableBytes) = (null, null);
            try
            {
                var thin = (await ListLvsAsync(pool.Spec.VolumeGroup!, cancellationToken))?.FirstOrDefault(l => l.Name == pool.Spec.ThinPool && l.IsThinPool);
                if (thin is not null)
                    (described.CapacityBytes, described.AvailableBytes) = (thin.SizeBytes, thin.SizeBytes - thin.AllocatedBytes);
            }
            catch (AgentProblemException)
            {
                // Figures are optional: a volume group that went away shows none.
            }
        }
        return described;
    }

    /// <summary>The thin volumes of an lvm-thin pool (the thin pool's own LV excluded).</summary>
    public async Task<IReadOnlyList<LogicalVolume>> ThinVolumesAsync(PoolDir pool, CancellationToken cancellationToken) =>
        (await ListLvsAsync(pool.Spec.VolumeGroup!, cancellationToken) ?? throw AgentProblemException.HostCommand(
            $"Volume group \"{pool.Spec.VolumeGroup}\" of storage pool \"{pool.Name}\" cannot be listed."))
            .Where(l => l.PoolLv == pool.Spec.ThinPool).ToList();

    /// <summary>Runs an LVM command; a failure is a 500 naming the command and LVM's last line.</summary>
    public async Task RunLvmAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken)
    {
        var result = await Runner.RunAsync(argv, LvmTimeout, cancellationToken);
        if (!result.Ok)
        {
            if (result.StdErr.Contains("insufficient free space", StringComparison.OrdinalIgnoreCase) || result.StdErr.Contains("No space", StringComparison.OrdinalIgnoreCase))
                throw AgentProblemException.NoSpace($"{argv[0]} {argv[^1]}: {LastLine(result.StdErr)}");
            throw AgentProblemException.HostCommand($"{argv[0]} {argv[^1]} failed: {LastLine(result.StdErr)}");
        }
    }

    /// <summary>True when an nfs pool is mounted, so its directory is the export and not the local mount point.</summary>
    public static bool IsReady(PoolDir pool) => pool.Spec.Type != "nfs" || IsMounted(pool.Path);

    /// <summary>Mounts every nfs pool that is not mounted (agent start); failures are logged, the pool stays unusable until mounted.</summary>
    public async Task MountAllAsync(CancellationToken cancellationToken)
    {
        foreach (var pool in All().Where(p => p.Spec.Type == "nfs" && !IsMounted(p.Path)))
        {
            try
            {
                Directory.CreateDirectory(pool.Path);
                var result = await Runner.RunAsync(NfsCommands.Mount(pool.Spec.Server!, pool.Spec.Export!, pool.Spec.MountOptions, pool.Path), MountTimeout, cancellationToken);
                if (!result.Ok)
                    _logger.LogWarning("Could not mount nfs pool {Name} at {Path}: {Reason}", pool.Name, pool.Path, LastLine(result.StdErr));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or TimeoutException or InvalidOperationException)
            {
                _logger.LogWarning("Could not mount nfs pool {Name} at {Path}: {Reason}", pool.Name, pool.Path, e.Message);
            }
        }
    }

    private ICommandRunner Runner => _services.GetRequiredService<ICommandRunner>();

    private async Task<StoragePoolSpec> PrepareLvmThinAsync(StoragePoolSpec spec, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_pools.Values.FirstOrDefault(p => p.Spec.Type == "lvm-thin" && p.Spec.VolumeGroup == spec.VolumeGroup && p.Spec.ThinPool == spec.ThinPool) is { } other)
                throw AgentProblemException.Conflict($"Storage pool \"{other.Name}\" uses thin pool {spec.VolumeGroup}/{spec.ThinPool} already.");
        }
        var lvs = await ListLvsAsync(spec.VolumeGroup!, cancellationToken)
            ?? throw AgentProblemException.Invalid("volume_group", $"volume group \"{spec.VolumeGroup}\" does not exist on this host (or lvs cannot read it).");
        var thin = lvs.FirstOrDefault(l => l.Name == spec.ThinPool);
        if (thin is null || !thin.IsThinPool)
            throw AgentProblemException.Invalid("thin_pool",
                $"{spec.VolumeGroup}/{spec.ThinPool} {(thin is null ? "does not exist" : "is not a thin pool")}; create it first (lvcreate --type thin-pool).");
        return new StoragePoolSpec { Name = spec.Name, Type = "lvm-thin", VolumeGroup = spec.VolumeGroup, ThinPool = spec.ThinPool };
    }

    private async Task<StoragePoolSpec> PrepareNfsAsync(StoragePoolSpec spec, CancellationToken cancellationToken)
    {
        var stored = new StoragePoolSpec { Name = spec.Name, Type = "nfs", Server = spec.Server, Export = spec.Export, MountOptions = spec.MountOptions };
        var mountPoint = HostPathOf(stored);
        lock (_lock)
        {
            foreach (var other in _pools.Values)
            {
                var otherPath = SafeFile.RealPath(other.Path) ?? other.Path;
                if (SafeFile.IsWithin(mountPoint, otherPath) || SafeFile.IsWithin(otherPath, mountPoint))
                    throw AgentProblemException.Conflict($"{mountPoint} overlaps storage pool \"{other.Name}\" ({other.Path}); pools must not contain each other.");
            }
        }
        if (IsMounted(mountPoint))
            throw AgentProblemException.Conflict($"Something is mounted at {mountPoint} already.");
        if (File.Exists(mountPoint) || (Directory.Exists(mountPoint) && Directory.EnumerateFileSystemEntries(mountPoint).Any()))
            throw AgentProblemException.Conflict($"{mountPoint} exists and is not an empty directory; the agent mounts the export there.");
        var made = !Directory.Exists(mountPoint);
        Directory.CreateDirectory(mountPoint);
        var result = await Runner.RunAsync(NfsCommands.Mount(spec.Server!, spec.Export!, spec.MountOptions, mountPoint), MountTimeout, cancellationToken);
        if (!result.Ok)
        {
            if (made)
                Directory.Delete(mountPoint);
            throw AgentProblemException.Invalid("export", $"mounting {NfsCommands.Source(spec.Server!, spec.Export!)} failed: {LastLine(result.StdErr)}");
        }
        return stored;
    }

    private async Task<IReadOnlyList<LogicalVolume>?> ListLvsAsync(string volumeGroup, CancellationToken cancellationToken)
    {
        var result = await Runner.RunAsync(LvmCommands.List(volumeGroup), LvmTimeout, cancellationToken);
        return result.Ok ? LvmCommands.ParseList(result.StdOut) : null;
    }

    private static bool IsMounted(string path)
    {
        try
        {
            return NfsCommands.MountedAt(File.ReadAllText("/proc/self/mountinfo"), path) is not null;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string LastLine(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no message)" : lines[^1];
    }
}
