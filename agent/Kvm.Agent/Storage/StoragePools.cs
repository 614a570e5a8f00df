using System.Text.Json;
using Kvm.Agent.Problems;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Agent.Storage;

/// <summary>A pool as the storage code uses it: a name and a directory.</summary>
public sealed record PoolDir(string Name, string Path, bool Builtin, StoragePoolSpec Spec);

/// <summary>
/// The storage pools: the built-in <c>default</c> pool under the data directory, and <c>dir</c> pools created
/// through the API, whose definitions live in <c>&lt;data-dir&gt;/storage-pools/&lt;name&gt;.json</c>.
/// </summary>
public sealed partial class StoragePools
{
    /// <summary>Name of the built-in pool.</summary>
    public const string DefaultName = "default";

    // A pool lists and deletes every file in its directory: never let one cover the system.
    private static readonly string[] SystemTrees = ["/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin", "/sys", "/usr"];
    private static readonly string[] SystemDirs = ["/", "/home", "/media", "/mnt", "/opt", "/root", "/srv", "/tmp", "/var", "/var/lib"];

    private readonly StorageOptions _options;
    private readonly IServiceProvider _services;
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, PoolDir> _pools = new(StringComparer.Ordinal);
    private readonly ILogger<StoragePools> _logger;

    /// <summary>Loads the pool definitions and makes sure the default pool's directory exists.</summary>
    public StoragePools(StorageOptions options, IServiceProvider services, ILogger<StoragePools> logger)
    {
        _options = options;
        _services = services;
        _logger = logger;
        Directory.CreateDirectory(options.DefaultPoolPath);
        _pools[DefaultName] = new PoolDir(DefaultName, options.DefaultPoolPath, true,
            new StoragePoolSpec { Name = DefaultName, Type = "dir", Path = options.DefaultPoolPath });
        if (!Directory.Exists(options.PoolDefinitionsDir))
            return;
        foreach (var file in Directory.EnumerateFiles(options.PoolDefinitionsDir, "*.json"))
        {
            try
            {
                var spec = JsonSerializer.Deserialize(File.ReadAllBytes(file), ModelJsonContext.Default.StoragePoolSpec);
                var name = System.IO.Path.GetFileNameWithoutExtension(file);
                if (spec?.Name != name || name == DefaultName || Validator.Validate(spec).Count > 0)
                    throw new InvalidDataException("the definition does not match its file name or is invalid");
                _pools[name] = new PoolDir(name, HostPathOf(spec), false, spec);
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
            {
                logger.LogWarning("Ignoring storage pool definition {File}: {Reason}", file, e.Message);
            }
        }
    }

    /// <summary>The pool with this name, or null.</summary>
    public PoolDir? Find(string? name)
    {
        lock (_lock)
            return name is null ? null : _pools.GetValueOrDefault(name);
    }

    /// <summary>Every pool, by name.</summary>
    public IReadOnlyList<PoolDir> All()
    {
        lock (_lock)
            return [.. _pools.Values];
    }

    /// <summary>A pool with its file-system figures.</summary>
    public static StoragePool Describe(PoolDir pool)
    {
        long? capacity = null, available = null;
        try
        {
            // DriveInfo runs statvfs on whatever path it is given: the figures are those of the pool's file system.
            var drive = new DriveInfo(pool.Path);
            capacity = drive.TotalSize;
            available = drive.AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
        }
        return new StoragePool
        {
            Name = pool.Spec.Name,
            Type = pool.Spec.Type,
            Path = pool.Spec.Path,
            HostPath = pool.Path,
            CapacityBytes = capacity,
            AvailableBytes = available,
            Builtin = pool.Builtin,
        };
    }

    /// <summary>Free bytes on the pool's file system, or null when unknown.</summary>
    public static long? Available(PoolDir pool)
    {
        try
        {
            return new DriveInfo(pool.Path).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Defines a <c>dir</c> pool, creating its directory when missing (other types: <see cref="CreateAsync"/>).</summary>
    public StoragePool Create(StoragePoolSpec spec)
    {
        if (spec.Type is not (null or "dir"))
            throw new InvalidOperationException("nfs and lvm-thin pools are created through CreateAsync.");
        var errors = Validator.Validate(spec);
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
        var name = spec.Name!;
        var path = spec.Path!;
        if (path != System.IO.Path.GetFullPath(path) || (path.Length > 1 && path.EndsWith('/')))
            throw AgentProblemException.Invalid("path", $"\"{Validator.Printable(path)}\" is not a normalised absolute path (no '.', '..', '//' or trailing '/').");
        lock (_lock)
        {
            if (name == DefaultName)
                throw AgentProblemException.Conflict("\"default\" is the built-in pool; choose another name.");
            if (_pools.ContainsKey(name))
                throw AgentProblemException.Conflict($"A storage pool named \"{name}\" exists already.");
            var canonical = SafeFile.RealPath(path) ?? path;
            CheckLocation(path, canonical);
            foreach (var other in _pools.Values)
            {
                var otherPath = SafeFile.RealPath(other.Path) ?? other.Path;
                if (SafeFile.IsWithin(canonical, otherPath) || SafeFile.IsWithin(otherPath, canonical))
                    throw AgentProblemException.Conflict($"{path} overlaps storage pool \"{other.Name}\" ({other.Path}); pools must not contain each other.");
            }
            if (File.Exists(path))
                throw AgentProblemException.Invalid("path", $"{path} exists and is not a directory.");
            try
            {
                Directory.CreateDirectory(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw AgentProblemException.Invalid("path", $"Cannot create {path}: {e.Message}");
            }
            var stored = new StoragePoolSpec { Name = name, Type = spec.Type, Path = path };
            SafeFile.WriteAtomic(DefinitionPath(name), JsonSerializer.SerializeToUtf8Bytes(stored, ModelJsonContext.Default.StoragePoolSpec));
            var pool = new PoolDir(name, path, false, stored);
            _pools[name] = pool;
            return Describe(pool);
        }
    }

    /// <summary>Forgets a pool that holds nothing; its directory stays on the host.</summary>
    public void Delete(string name)
    {
        CheckName(name);
        lock (_lock)
        {
            if (!_pools.TryGetValue(name, out var pool))
                throw AgentProblemException.NotFound($"No storage pool named \"{name}\".");
            if (pool.Builtin)
                throw AgentProblemException.InvalidState("The built-in \"default\" pool cannot be deleted.");
            if (pool.Spec.Type is "nfs" or "lvm-thin")
                throw new InvalidOperationException("nfs and lvm-thin pools are deleted through DeleteAsync.");
            EnsureEmpty(pool);
            File.Delete(DefinitionPath(name));
            SafeFile.FsyncDirectory(_options.PoolDefinitionsDir);
            _pools.Remove(name);
        }
    }

    /// <summary>Refuses (409) to forget a pool that VM disks refer to or whose directory holds files.</summary>
    private void EnsureEmpty(PoolDir pool)
    {
        EnsureNoUsers(pool);
        var files = Directory.Exists(pool.Path)
            ? Directory.EnumerateFileSystemEntries(pool.Path).Select(System.IO.Path.GetFileName)
                .Where(f => !f!.StartsWith(SafeFile.TempPrefix, StringComparison.Ordinal))
                // The images directory stays behind its last image: empty, it holds nothing.
                .Where(f => f != Kvm.Agent.Images.Images.PoolSubdirectory || Directory.EnumerateFileSystemEntries(System.IO.Path.Combine(pool.Path, f)).Any())
                .Order(StringComparer.Ordinal).ToList()
            : [];
        if (files.Count > 0)
            throw AgentProblemException.Conflict(
                $"Storage pool \"{pool.Name}\" still holds {files.Count} volume(s) or VM disk(s): {string.Join(", ", files.Take(10))}{(files.Count > 10 ? ", …" : "")}.");
    }

    /// <summary>Refuses (409) to forget a pool that VM disks refer to.</summary>
    private void EnsureNoUsers(PoolDir pool)
    {
        var users = (_services.GetService<IVolumeUsage>()?.VolumeUses() ?? [])
            .Where(u => u.VolumeId.StartsWith(pool.Name + "/", StringComparison.Ordinal))
            .Select(u => $"{u.VmId}/{u.Slot}").ToList();
        if (users.Count > 0)
            throw AgentProblemException.Conflict($"Storage pool \"{pool.Name}\" is used by VM disks {string.Join(", ", users)}.");
    }

    /// <summary>Refuses a pool name that does not follow the model's rule (it becomes a file name).</summary>
    public static void CheckName(string name, string attribute = "name")
    {
        if (!Validator.Matches(Patterns.PoolName, name))
            throw AgentProblemException.Invalid(attribute, $"\"{Validator.Printable(name)}\" is not a valid pool name: expected {Patterns.PoolNameText}.");
    }

    private void CheckLocation(string path, string canonical)
    {
        foreach (var candidate in new[] { path, canonical })
        {
            if (SystemDirs.Contains(candidate, StringComparer.Ordinal) || SystemTrees.Any(t => SafeFile.IsWithin(candidate, t)))
                throw AgentProblemException.Invalid("path", $"{path} is a system directory; a pool needs a directory of its own.");
            var dataDir = SafeFile.RealPath(_options.DataDir) ?? _options.DataDir;
            var poolsDir = System.IO.Path.Combine(dataDir, "pools");
            if (SafeFile.IsWithin(candidate, dataDir) && !(candidate != poolsDir && SafeFile.IsWithin(candidate, poolsDir)))
                throw AgentProblemException.Invalid("path", $"{path} is inside the agent's data directory; only {poolsDir}/<name> may hold pools there.");
        }
    }

    private string DefinitionPath(string name) => System.IO.Path.Combine(_options.PoolDefinitionsDir, name + ".json");
}
