using System.Globalization;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>CPU controls: online vCPUs, cgroup limits, affinity, nested virtualization (Proxmox vcpus, cpulimit, cpuunits, affinity).</summary>
public sealed partial class CpuSpec : IValidatable
{
    /// <summary>Online vCPUs.</summary>
    [Setting("vCPUs online (Proxmox `vcpus`): at most `sockets` × `cores` × `threads`, which is the most the VM can have. " +
        "Changing it plugs or unplugs vCPUs (unplugging needs the guest to release them; otherwise it applies at the next start).",
        DefaultText = "`sockets` × `cores` × `threads`", Min = 1, Max = 255, Update = UpdateKind.Live, Hotplug = VmSpec.HotplugCpu)]
    public int? Vcpus { get; set; }

    /// <summary>CPU time limit.</summary>
    [Setting("CPU time limit in host CPUs, fractional (Proxmox `cpulimit`): `1.5` lets the VM use at most one and a half host CPUs' time. " +
        "`0` or unset: no limit. Set through the VM's cgroup (cpu.max on cgroup v2, cfs quota on v1); applied live.",
        DefaultText = "no limit", Min = 0, Max = 128, Update = UpdateKind.Live)]
    public double? Limit { get; set; }

    /// <summary>CPU weight.</summary>
    [Setting("Relative CPU weight against other VMs when the host is busy (Proxmox `cpuunits`), 1–10000; 100 is the default share. " +
        "Set through the VM's cgroup (cpu.weight on cgroup v2, cpu.shares = weight × 1024 / 100 on v1); applied live.",
        DefaultText = "100 (cgroup default)", Min = 1, Max = 10000, Update = UpdateKind.Live)]
    public int? Weight { get; set; }

    /// <summary>Host CPU affinity.</summary>
    [Setting("Host CPUs the VM's QEMU (all its threads) may run on, as a list like `0-1,3` (Proxmox `affinity`). " +
        "Set through the VM's cpuset cgroup; applied live. Unset: all host CPUs.",
        Pattern = CpuList.Pattern, PatternText = "a CPU list like 0-3,8", MaxLength = 256, Update = UpdateKind.Live)]
    public string? Affinity { get; set; }

    /// <summary>Nested virtualization.</summary>
    [Setting("Offer hardware virtualization (vmx on Intel, svm on AMD hosts) to the guest so it can run VMs itself. " +
        "Needs the host's kvm_intel/kvm_amd `nested` parameter on (see `kvm_host.nested_virtualization`).",
        Default = false)]
    public bool? Nested { get; set; }

    /// <summary>sockets × cores × threads with the declared defaults.</summary>
    public int MaxVcpus => (Sockets ?? 1) * (Cores ?? 1) * (Threads ?? 1);

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (Vcpus is { } vcpus && vcpus > MaxVcpus)
            context.Add(path.Attr("vcpus"), $"{vcpus} is more than sockets × cores × threads = {MaxVcpus}, the most vCPUs this VM can have.");
        if (Affinity is { } affinity && Validator.Matches(CpuList.Pattern, affinity) && CpuList.Parse(affinity) is null)
            context.Add(path.Attr("affinity"), $"\"{affinity}\" has a range that runs backwards or a CPU number above {CpuList.MaxCpu}.");
    }
}

/// <summary>Memory hot-plug, auto-ballooning weight, hugepages and KSM (Proxmox hotplug=memory, shares, hugepages, allow-ksm).</summary>
public sealed partial class MemorySpec : IValidatable
{
    /// <summary>Memory hot-plug ceiling.</summary>
    [Setting("Enable memory hot-plug up to this many MiB (QEMU `maxmem`, with DIMM slots): with `memory` in `hotplug`, growing `size_mib` plugs a DIMM into the running VM. " +
        "Unset: no hot-plug; a new size applies at the next start.",
        Min = 32, Max = 4_194_304)]
    public long? HotplugMaxMib { get; set; }

    /// <summary>Auto-ballooning weight.</summary>
    [Setting("Auto-ballooning weight (Proxmox `shares`, where 1000 is usual), 0–50000, for a VM whose `balloon.min_mib` is below `size_mib`. " +
        "While the host uses less than 80 % of its memory the agent sets the VM's balloon target to its full size; above that, it takes memory back " +
        "(never below `balloon.min_mib`), less from VMs with more shares. Unset or `0`: no auto-ballooning, the balloon target stays at `balloon.min_mib`.",
        DefaultText = "no auto-ballooning", Min = 0, Max = 50000, Update = UpdateKind.Live)]
    public int? Shares { get; set; }

    /// <summary>Hugepages.</summary>
    [Setting("Back the guest memory with host hugepages (Proxmox `hugepages`): `2` (2 MiB pages), `1024` (1 GiB pages) or `any` (the largest size that divides the memory). " +
        "The host must have enough free hugepages of that size mounted (hugetlbfs).",
        OneOf = ["2", "1024", "any"])]
    public string? Hugepages { get; set; }

    /// <summary>KSM.</summary>
    [Setting("Let the host's kernel samepage merging (KSM) share identical guest pages (QEMU `mem-merge`, Proxmox `allow-ksm`).", Default = true)]
    public bool? Ksm { get; set; }

    /// <summary>
    /// memory.size_mib is live only when it grows within an unchanged <c>hotplug_max_mib</c> (a DIMM is plugged) and <c>memory</c> is in
    /// <c>hotplug</c> (<see cref="VmSpec.RefineHotplugChanges"/>); any other size change needs a restart, so plans warn and <c>update_policy</c> applies.
    /// </summary>
    public static void RefineSizeChange(VmSpec before, VmSpec after, List<SettingChange> changes)
    {
        var index = changes.FindIndex(c => c.Attribute == "memory.size_mib" && c.Kind == UpdateKind.Live);
        if (index < 0)
            return;
        long oldSize = before.Memory?.SizeMib ?? 512, newSize = after.Memory?.SizeMib ?? 512;
        if (oldSize == newSize)
            return; // null ↔ default: nothing changes
        var max = before.Memory?.HotplugMaxMib;
        if (max is null || after.Memory?.HotplugMaxMib != max || newSize < oldSize || newSize > max)
            changes[index] = changes[index] with { Kind = UpdateKind.Restart };
    }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        var size = SizeMib ?? 512;
        if (HotplugMaxMib is { } max && max <= size)
            context.Add(path.Attr("hotplug_max_mib"), $"{max} MiB must be more than size_mib ({size} MiB) to leave room for hot-plugged memory.");
        if (Hugepages is "2" or "1024" && size % long.Parse(Hugepages, CultureInfo.InvariantCulture) != 0)
            context.Add(path.Attr("hugepages"), $"size_mib ({size} MiB) is not a multiple of the {Hugepages} MiB page size.");
        if (Hugepages is not null && HotplugMaxMib is not null)
            context.Add(path.Attr("hugepages"), "cannot be combined with memory hot-plug (hotplug_max_mib) yet.");
    }
}

/// <summary>Linux CPU lists (<c>0-3,8</c>), as cpusets and Proxmox's affinity use them.</summary>
public static class CpuList
{
    /// <summary>The accepted syntax.</summary>
    public const string Pattern = "[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*";

    /// <summary>Highest CPU number accepted.</summary>
    public const int MaxCpu = 4095;

    /// <summary>The CPUs in the list, ascending and distinct; null when a range runs backwards or exceeds <see cref="MaxCpu"/>.</summary>
    public static SortedSet<int>? Parse(string list)
    {
        var cpus = new SortedSet<int>();
        foreach (var part in list.Split(','))
        {
            var bounds = part.Split('-');
            if (!int.TryParse(bounds[0], NumberStyles.None, CultureInfo.InvariantCulture, out var from)
                || !int.TryParse(bounds[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var to) || to < from || to > MaxCpu)
                return null;
            for (var cpu = from; cpu <= to; cpu++)
                cpus.Add(cpu);
        }
        return cpus;
    }

    /// <summary>The canonical list (<c>0-2,5</c>) of a set of CPUs.</summary>
    public static string Format(IEnumerable<int> cpus)
    {
        var parts = new List<string>();
        int? start = null, last = null;
        foreach (var cpu in cpus.Order())
        {
            if (last is { } l && cpu == l + 1) { last = cpu; continue; }
            if (start is { } s) parts.Add(s == last ? s.ToString(CultureInfo.InvariantCulture) : $"{s}-{last}");
            start = last = cpu;
        }
        if (start is { } st) parts.Add(st == last ? st.ToString(CultureInfo.InvariantCulture) : $"{st}-{last}");
        return string.Join(',', parts);
    }
}
