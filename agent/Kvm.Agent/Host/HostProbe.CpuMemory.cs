using System.Globalization;

namespace Kvm.Agent.Host;

public static partial class HostProbe
{
    /// <summary>"vmx" or "svm" when kvm_intel or kvm_amd is loaded with <c>nested</c> on (Y or 1); null otherwise.</summary>
    public static string? ProbeNested(string sysDirectory)
    {
        foreach (var (module, flag) in new[] { ("kvm_intel", "vmx"), ("kvm_amd", "svm") })
        {
            var value = ReadOr(Path.Join(sysDirectory, "module", module, "parameters", "nested"), v => v.Trim(), "");
            if (value is "Y" or "y" or "1")
                return flag;
        }
        return null;
    }

    /// <summary>Host NUMA nodes (node0, node1, … in /sys/devices/system/node); null when sysfs does not say.</summary>
    public static int? CountNumaNodes(string sysDirectory)
    {
        var dir = Path.Join(sysDirectory, "devices", "system", "node");
        return Directory.Exists(dir) && Directory.EnumerateDirectories(dir, "node*").Count() is > 0 and var n ? n : null;
    }

    /// <summary>hugetlbfs mounts from /proc/mounts by page size in MiB ("2", "1024"); a mount without <c>pagesize=</c> has the default 2 MiB pages.</summary>
    public static Dictionary<string, string> ParseHugepageMounts(string mounts)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in mounts.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            if (fields.Length < 4 || fields[2] != "hugetlbfs")
                continue;
            var size = "2";
            foreach (var option in fields[3].Split(','))
            {
                if (!option.StartsWith("pagesize=", StringComparison.Ordinal))
                    continue;
                var text = option["pagesize=".Length..];
                var unit = text[^1];
                if (long.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                    size = (unit switch { 'G' => n * 1024, 'M' => n, 'K' or 'k' => n / 1024, _ => 0 }).ToString(CultureInfo.InvariantCulture);
            }
            // /proc/mounts escapes spaces as \040; such a mount point is not worth handing to QEMU.
            if (size != "0" && !fields[1].Contains('\\', StringComparison.Ordinal))
                result.TryAdd(size, fields[1]);
        }
        return result;
    }
}

/// <summary>The host's kernel samepage merging state (/sys/kernel/mm/ksm), read on each request: it changes while VMs run.</summary>
public sealed record KsmState(bool Running, long PagesShared, long PagesSharing, long PagesUnshared, long FullScans)
{
    /// <summary>The state, or null when the kernel has no KSM.</summary>
    public static KsmState? Read(string sysDirectory = "/sys")
    {
        var dir = Path.Join(sysDirectory, "kernel", "mm", "ksm");
        long Value(string name)
        {
            try { return long.Parse(File.ReadAllText(Path.Join(dir, name)).Trim(), CultureInfo.InvariantCulture); }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { return 0; }
        }
        if (!File.Exists(Path.Join(dir, "run")))
            return null;
        return new KsmState(Value("run") == 1, Value("pages_shared"), Value("pages_sharing"), Value("pages_unshared"), Value("full_scans"));
    }
}
