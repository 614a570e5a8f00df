namespace Kvm.Agent.Storage.Pools;

/// <summary>What the support check reads from the host; tests build it by hand.</summary>
/// <param name="ProcFilesystems">Text of /proc/filesystems (null when unreadable).</param>
/// <param name="ProcMisc">Text of /proc/misc, where a loaded device-mapper registers (null when unreadable).</param>
/// <param name="KernelModules">Names of the kernel's loadable modules (from /lib/modules/&lt;release&gt;), without suffix; null when there is no module tree.</param>
/// <param name="KernelRelease">uname -r, for messages.</param>
/// <param name="Binaries">Which of the tools the pool types need are on PATH.</param>
public sealed record StorageHostState(string? ProcFilesystems, string? ProcMisc, IReadOnlySet<string>? KernelModules, string KernelRelease, IReadOnlySet<string> Binaries);

/// <summary>
/// Which storage pool types this host can serve, and what is missing for the others. The decision is a pure function of
/// <see cref="StorageHostState"/>; <see cref="Read"/> gathers that state (a few small file reads and a PATH lookup, cheap
/// enough for every request, so a host that gains a module or a package is seen without an agent restart).
/// </summary>
public static class StoragePoolSupport
{
    /// <summary>Every pool type, in the order the host lists them.</summary>
    public static readonly IReadOnlyList<string> Types = ["dir", "lvm-thin", "nfs"];

    /// <summary>The tools the check looks for.</summary>
    public static readonly IReadOnlyList<string> Tools = ["lvs", "lvcreate", "lvremove", "lvextend", "thin_check", "mount", "umount", "mount.nfs"];

    /// <summary>For each pool type, null when the host can serve it, else what is missing.</summary>
    public static IReadOnlyDictionary<string, string?> Evaluate(StorageHostState state)
    {
        var result = new Dictionary<string, string?>(StringComparer.Ordinal) { ["dir"] = null };

        var missing = new List<string>();
        var dm = (state.ProcMisc ?? "").Split('\n').Any(l => l.Trim().EndsWith(" device-mapper", StringComparison.Ordinal))
            || state.KernelModules?.Contains("dm_mod") == true;
        if (!dm)
            missing.Add($"the kernel ({state.KernelRelease}) has no device-mapper (no device-mapper in /proc/misc and no dm_mod module)");
        else if (state.KernelModules is { } modules && !modules.Contains("dm_thin_pool"))
            missing.Add($"the kernel ({state.KernelRelease}) has no dm-thin-pool target (no dm_thin_pool module, loadable or built in)");
        foreach (var tool in new[] { "lvs", "lvcreate", "lvremove", "lvextend" })
        {
            if (!state.Binaries.Contains(tool))
            {
                missing.Add($"the LVM tools are not installed ({tool} is not on PATH; Debian package lvm2)");
                break;
            }
        }
        if (!state.Binaries.Contains("thin_check"))
            missing.Add("thin_check is not on PATH (Debian package thin-provisioning-tools)");
        result["lvm-thin"] = missing.Count == 0 ? null : string.Join("; ", missing);

        missing = [];
        var fs = (state.ProcFilesystems ?? "").Split('\n').Select(l => l.Split('\t', StringSplitOptions.TrimEntries)[^1]).ToHashSet(StringComparer.Ordinal);
        if (!fs.Contains("nfs") && !fs.Contains("nfs4") && state.KernelModules?.Contains("nfs") != true)
            missing.Add($"the kernel ({state.KernelRelease}) has no NFS client (no nfs in /proc/filesystems and no nfs module)");
        if (!state.Binaries.Contains("mount.nfs"))
            missing.Add("mount.nfs is not on PATH (Debian package nfs-common)");
        if (!state.Binaries.Contains("mount") || !state.Binaries.Contains("umount"))
            missing.Add("mount/umount are not on PATH (Debian package mount)");
        result["nfs"] = missing.Count == 0 ? null : string.Join("; ", missing);
        return result;
    }

    /// <summary>Reads the host's state now.</summary>
    public static StorageHostState Read(string procDirectory = "/proc", string modulesDirectory = "/lib/modules", string? path = null)
    {
        var release = ReadText(Path.Join(procDirectory, "sys/kernel/osrelease"))?.Trim() ?? "unknown";
        var modules = ModulesOf(Path.Join(modulesDirectory, release));
        var dirs = (path ?? Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin"]).Distinct(StringComparer.Ordinal).ToList();
        var binaries = Tools.Where(t => dirs.Any(d => File.Exists(Path.Join(d, t)))).ToHashSet(StringComparer.Ordinal);
        return new StorageHostState(ReadText(Path.Join(procDirectory, "filesystems")), ReadText(Path.Join(procDirectory, "misc")), modules, release, binaries);
    }

    // The module tree changes with a kernel package, not between requests: read it again only when its index changes.
    private static readonly Lock ModulesLock = new();
    private static (string Tree, DateTime Stamp, HashSet<string>? Modules)? _modules;

    /// <summary>The kernel's modules, loadable (every .ko under the tree) and built in (modules.builtin); null without a tree.</summary>
    private static HashSet<string>? ModulesOf(string tree)
    {
        if (!Directory.Exists(tree))
            return null;
        var stamp = File.Exists(Path.Join(tree, "modules.dep")) ? File.GetLastWriteTimeUtc(Path.Join(tree, "modules.dep")) : Directory.GetLastWriteTimeUtc(tree);
        lock (ModulesLock)
        {
            if (_modules is { } cached && cached.Tree == tree && cached.Stamp == stamp)
                return cached.Modules;
        }
        var modules = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var file in Directory.EnumerateFiles(tree, "*.ko*", SearchOption.AllDirectories))
                modules.Add(ModuleName(Path.GetFileName(file)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        // Built-in modules are listed in modules.builtin, one path a line.
        foreach (var line in (ReadText(Path.Join(tree, "modules.builtin")) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            modules.Add(ModuleName(Path.GetFileName(line)));
        lock (ModulesLock)
            _modules = (tree, stamp, modules);
        return modules;
    }

    /// <summary>A module's name from its file name: <c>dm-thin-pool.ko.xz</c> → <c>dm_thin_pool</c>, as the kernel names it.</summary>
    public static string ModuleName(string fileName)
    {
        var dot = fileName.IndexOf(".ko", StringComparison.Ordinal);
        return (dot < 0 ? fileName : fileName[..dot]).Replace('-', '_');
    }

    private static string? ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
