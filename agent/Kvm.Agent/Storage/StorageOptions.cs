namespace Kvm.Agent.Storage;

/// <summary>Where the storage feature keeps its files and how it runs qemu-img (fed from the agent's options).</summary>
public sealed class StorageOptions
{
    /// <summary>The agent's data directory.</summary>
    public required string DataDir { get; init; }

    /// <summary>qemu-img binary (a name on PATH or an absolute path).</summary>
    public string QemuImgBinary { get; init; } = "qemu-img";

    /// <summary>Bound on read-only qemu-img calls (info).</summary>
    public TimeSpan InfoTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Bound on qemu-img calls that write (create, resize); full preallocation of a big image takes minutes.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Directory of the built-in <c>default</c> pool.</summary>
    public string DefaultPoolPath => Path.Combine(DataDir, "pools", "default");

    /// <summary>Definitions of the pools created through the API.</summary>
    public string PoolDefinitionsDir => Path.Combine(DataDir, "storage-pools");

    /// <summary>What users set on the volumes they created (format and preallocation cannot be read back from a file safely).</summary>
    public string VolumeDefinitionsDir => Path.Combine(DataDir, "volumes");

    /// <summary>procfs, read for the pool types the host supports (tests point it elsewhere).</summary>
    public string ProcDirectory { get; init; } = "/proc";

    /// <summary>The kernel module tree, read for the pool types the host supports.</summary>
    public string ModulesDirectory { get; init; } = "/lib/modules";

    /// <summary>Where the pool types' tools are looked for (PATH syntax); null: the agent's PATH.</summary>
    public string? ToolPath { get; init; }
}
