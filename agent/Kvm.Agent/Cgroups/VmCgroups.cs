using System.Globalization;
using Kvm.Model;

namespace Kvm.Agent.Cgroups;

/// <summary>Which cgroup hierarchy the host has.</summary>
public enum CgroupVersion
{
    /// <summary>No usable cpu controller.</summary>
    None,
    /// <summary>Legacy or hybrid: one hierarchy per controller (cpu, cpuset, …).</summary>
    V1,
    /// <summary>Unified hierarchy with the cpu controller.</summary>
    V2,
}

/// <summary>A cgroup file could not be written (bad value, missing controller, no permission).</summary>
public sealed class CgroupException(string attribute, string message) : Exception(message)
{
    /// <summary>The setting the failed write carried (cpu.limit, cpu.weight, cpu.affinity).</summary>
    public string Attribute { get; } = attribute;
}

/// <summary>
/// A cgroup per running VM for cpu.limit, cpu.weight and cpu.affinity: <c>&lt;root&gt;/&lt;parent&gt;/vm-&lt;id&gt;</c> on cgroup v2
/// (cpu.max, cpu.weight, cpuset.cpus), or the same path under the cpu and cpuset hierarchies on v1 (cfs quota/period,
/// cpu.shares, cpuset.cpus + cpuset.mems). QEMU's process (all its threads, and threads it makes later) is moved in;
/// the cgroup goes when the VM stops. Made only for VMs that set one of the three, so other VMs never touch cgroups.
/// </summary>
public sealed class VmCgroups(string root, string parent)
{
    /// <summary>CFS period used for cpu.limit (100 ms, the kernel's default).</summary>
    public const long PeriodUs = 100_000;

    /// <summary>The default weight on cgroup v2 (and cpu.shares 1024 on v1).</summary>
    public const int DefaultWeight = 100;

    /// <summary>The hierarchy found under the root.</summary>
    public CgroupVersion Version { get; } = Detect(root);

    /// <summary>Detects the hierarchy: v2 when the root lists the cpu controller, v1 when a separate cpu hierarchy exists.</summary>
    public static CgroupVersion Detect(string root)
    {
        var controllers = Path.Join(root, "cgroup.controllers");
        if (File.Exists(controllers) && File.ReadAllText(controllers).Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Contains("cpu"))
            return CgroupVersion.V2;
        return File.Exists(Path.Join(root, "cpu", "cpu.cfs_quota_us")) ? CgroupVersion.V1 : CgroupVersion.None;
    }

    /// <summary>Whether the CPU settings need a cgroup at all.</summary>
    public static bool Wanted(CpuSpec? cpu) => cpu is not null && (cpu.Limit is not null || cpu.Weight is not null || cpu.Affinity is not null);

    /// <summary>The VM's cgroup directories (one on v2; cpu and cpuset on v1).</summary>
    public IReadOnlyList<string> DirectoriesOf(long vmId) => Version switch
    {
        CgroupVersion.V2 => [Path.Join(root, parent, Name(vmId))],
        CgroupVersion.V1 => [Path.Join(root, "cpu", parent, Name(vmId)), Path.Join(root, "cpuset", parent, Name(vmId))],
        _ => [],
    };

    /// <summary>v1 cpu.shares for a v2-style weight (100 → 1024), within the kernel's 2–262144.</summary>
    public static long SharesFor(int weight) => Math.Clamp(weight * 1024L / DefaultWeight, 2, 262_144);

    /// <summary>The CFS quota in µs for a limit in CPUs; -1 (no limit) for 0 or null.</summary>
    public static long QuotaFor(double? limit) => limit is > 0 ? Math.Max(1000, (long)Math.Round(limit.Value * PeriodUs)) : -1;

    /// <summary>Creates the VM's cgroup when missing, writes the three settings (unset ones get the defaults) and moves the process in. Idempotent.</summary>
    public void Apply(long vmId, int pid, CpuSpec cpu)
    {
        switch (Version)
        {
            case CgroupVersion.V2: ApplyV2(vmId, pid, cpu); break;
            case CgroupVersion.V1: ApplyV1(vmId, pid, cpu); break;
            default:
                throw new CgroupException(Wanted(cpu) ? FirstSet(cpu) : "cpu", $"this host has no usable cgroup cpu controller under {root}.");
        }
    }

    /// <summary>Removes the VM's cgroup (after its QEMU exited). Idempotent; false when a directory could not be removed.</summary>
    public bool Remove(long vmId)
    {
        var ok = true;
        foreach (var dir in DirectoriesOf(vmId))
        {
            for (var attempt = 0; Directory.Exists(dir); attempt++)
            {
                try
                {
                    Directory.Delete(dir); // rmdir: a cgroup's files are not real files and go with it
                }
                catch (IOException) when (attempt < 20)
                {
                    Thread.Sleep(25); // the exiting process may still be leaving it
                }
                catch (IOException)
                {
                    ok = false;
                    break;
                }
            }
        }
        return ok;
    }

    private void ApplyV2(long vmId, int pid, CpuSpec cpu)
    {
        var parentDir = Path.Join(root, parent);
        Enable(root);
        Directory.CreateDirectory(parentDir);
        Enable(parentDir);
        var dir = Path.Join(parentDir, Name(vmId));
        Directory.CreateDirectory(dir);
        var quota = QuotaFor(cpu.Limit);
        Write(dir, "cpu.max", (quota < 0 ? "max" : quota.ToString(CultureInfo.InvariantCulture)) + " " + PeriodUs.ToString(CultureInfo.InvariantCulture), "cpu.limit");
        Write(dir, "cpu.weight", (cpu.Weight ?? DefaultWeight).ToString(CultureInfo.InvariantCulture), "cpu.weight");
        // An empty cpuset.cpus on v2 means "the parent's CPUs".
        Write(dir, "cpuset.cpus", cpu.Affinity ?? "\n", "cpu.affinity");
        Write(dir, "cgroup.procs", pid.ToString(CultureInfo.InvariantCulture), FirstSet(cpu));
    }

    private static void Enable(string dir)
    {
        // Controllers must be enabled for the children of every level; a level that has them already is fine.
        foreach (var controller in new[] { "+cpu", "+cpuset" })
        {
            try { File.AppendAllText(Path.Join(dir, "cgroup.subtree_control"), controller); }
            catch (IOException) { }
        }
    }

    private void ApplyV1(long vmId, int pid, CpuSpec cpu)
    {
        var cpuDir = Path.Join(root, "cpu", parent, Name(vmId));
        Directory.CreateDirectory(cpuDir);
        Write(cpuDir, "cpu.cfs_period_us", PeriodUs.ToString(CultureInfo.InvariantCulture), "cpu.limit");
        Write(cpuDir, "cpu.cfs_quota_us", QuotaFor(cpu.Limit).ToString(CultureInfo.InvariantCulture), "cpu.limit");
        Write(cpuDir, "cpu.shares", SharesFor(cpu.Weight ?? DefaultWeight).ToString(CultureInfo.InvariantCulture), "cpu.weight");
        Write(cpuDir, "cgroup.procs", pid.ToString(CultureInfo.InvariantCulture), FirstSet(cpu));

        if (!Directory.Exists(Path.Join(root, "cpuset")))
        {
            if (cpu.Affinity is not null)
                throw new CgroupException("cpu.affinity", $"this host has no cpuset cgroup hierarchy under {root}.");
            return;
        }
        // A v1 cpuset starts empty and takes no task until it has CPUs and memory nodes: each level copies its parent's.
        var top = Path.Join(root, "cpuset");
        var parentDir = Path.Join(top, parent);
        Directory.CreateDirectory(parentDir);
        Inherit(top, parentDir);
        var dir = Path.Join(parentDir, Name(vmId));
        Directory.CreateDirectory(dir);
        Write(dir, "cpuset.mems", ReadTrim(parentDir, "cpuset.mems"), "cpu.affinity");
        Write(dir, "cpuset.cpus", cpu.Affinity ?? ReadTrim(parentDir, "cpuset.cpus"), "cpu.affinity");
        Write(dir, "cgroup.procs", pid.ToString(CultureInfo.InvariantCulture), "cpu.affinity");
    }

    private static void Inherit(string from, string to)
    {
        foreach (var file in new[] { "cpuset.cpus", "cpuset.mems" })
            if (ReadTrim(to, file).Length == 0)
                Write(to, file, ReadTrim(from, file), "cpu.affinity");
    }

    private static string ReadTrim(string dir, string file)
    {
        try { return File.ReadAllText(Path.Join(dir, file)).Trim(); }
        catch (FileNotFoundException) { return ""; }
    }

    private static void Write(string dir, string file, string value, string attribute)
    {
        try
        {
            File.WriteAllText(Path.Join(dir, file), value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CgroupException(attribute, $"writing \"{value}\" to {Path.Join(dir, file)} failed: {e.Message}");
        }
    }

    private static string FirstSet(CpuSpec cpu) =>
        cpu.Limit is not null ? "cpu.limit" : cpu.Weight is not null ? "cpu.weight" : "cpu.affinity";

    private static string Name(long vmId) => "vm-" + vmId.ToString(CultureInfo.InvariantCulture);
}
