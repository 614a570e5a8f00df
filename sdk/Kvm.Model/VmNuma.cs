using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>Guest NUMA topology (Proxmox numa0 … numa7).</summary>
public partial class VmSpec
{
    /// <summary>NUMA nodes by name.</summary>
    [Setting("Guest NUMA nodes by name (`numa0` … `numa7`, Proxmox `numa[n]`). Together the nodes must hold every vCPU " +
        "(0 to sockets × cores × threads − 1) exactly once and add up to `memory.size_mib`. Unset: no NUMA topology.",
        KeyPattern = "numa[0-7]", KeyPatternText = "a node name numa0–numa7")]
    public Dictionary<string, NumaNodeSpec>? NumaNodes { get; set; }
}

/// <summary>One guest NUMA node.</summary>
public sealed class NumaNodeSpec
{
    /// <summary>vCPUs.</summary>
    [Setting("vCPUs of the node, a list like `0-1` or `0,2` (vCPU numbers, from 0).", Required = true,
        Pattern = CpuList.Pattern, PatternText = "a CPU list like 0-3,8", MaxLength = 256)]
    public string? Cpus { get; set; }

    /// <summary>Memory.</summary>
    [Setting("Memory of the node in MiB.", Required = true, Min = 16, Max = 4_194_304)]
    public long? MemoryMib { get; set; }

    /// <summary>Host nodes.</summary>
    [Setting("Host NUMA nodes the node's memory comes from, a list like `0` or `0-1`. Unset: any.",
        Pattern = CpuList.Pattern, PatternText = "a node list like 0-1", MaxLength = 64)]
    public string? HostNodes { get; set; }

    /// <summary>Policy.</summary>
    [Setting("How the memory is bound to `host_nodes`: `preferred`, `bind` or `interleave`.", DefaultText = "`bind` when `host_nodes` is set",
        OneOf = ["preferred", "bind", "interleave"])]
    public string? Policy { get; set; }
}

/// <summary>Cross-field rules of <see cref="VmSpec.NumaNodes"/>.</summary>
public static class NumaRules
{
    /// <summary>Every vCPU in exactly one node; the nodes' memory sums to the VM's; a policy needs host nodes.</summary>
    public static void Validate(VmSpec spec, ValidationContext context, AttrPath path)
    {
        if (spec.NumaNodes is not { Count: > 0 } nodes)
            return;
        var at = path.Attr("numa_nodes");
        var maxVcpus = (spec.Cpu ?? new CpuSpec()).MaxVcpus;
        var owner = new Dictionary<int, string>();
        long memory = 0;
        foreach (var (name, node) in nodes.OrderBy(n => n.Key, StringComparer.Ordinal))
        {
            memory += node.MemoryMib ?? 0;
            if (node.Policy is not null && node.HostNodes is null)
                context.Add(at.Key(name).Attr("policy"), "needs `host_nodes`.");
            if (node.HostNodes is { } host && Validator.Matches(CpuList.Pattern, host) && CpuList.Parse(host) is null)
                context.Add(at.Key(name).Attr("host_nodes"), $"\"{host}\" has a range that runs backwards.");
            if (node.Cpus is null || !Validator.Matches(CpuList.Pattern, node.Cpus))
                continue;
            if (CpuList.Parse(node.Cpus) is not { } cpus)
            {
                context.Add(at.Key(name).Attr("cpus"), $"\"{node.Cpus}\" has a range that runs backwards.");
                continue;
            }
            foreach (var cpu in cpus)
            {
                if (cpu >= maxVcpus)
                    context.Add(at.Key(name).Attr("cpus"), $"vCPU {cpu} does not exist: the VM has vCPUs 0-{maxVcpus - 1} (sockets × cores × threads).");
                else if (owner.TryGetValue(cpu, out var other))
                    context.Add(at.Key(name).Attr("cpus"), $"vCPU {cpu} is also in {other}.");
                else
                    owner[cpu] = name;
            }
        }
        for (var i = 0; i < nodes.Count; i++)
            if (!nodes.ContainsKey("numa" + i))
                context.Add(at, $"nodes are numbered from numa0 without gaps: numa{i} is missing.");
        var missing = Enumerable.Range(0, maxVcpus).Where(c => !owner.ContainsKey(c)).ToList();
        if (missing.Count > 0)
            context.Add(at, $"vCPUs {CpuList.Format(missing)} are in no node; every vCPU (0-{maxVcpus - 1}) needs one.");
        var size = spec.Memory?.SizeMib ?? 512;
        if (nodes.Values.All(n => n.MemoryMib is not null) && memory != size)
            context.Add(at, $"the nodes' memory_mib add up to {memory} MiB, but memory.size_mib is {size} MiB.");
        if (spec.Memory?.Hugepages is not null)
            context.Add(at, "cannot be combined with memory.hugepages yet.");
    }
}
