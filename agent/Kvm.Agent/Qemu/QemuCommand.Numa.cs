using System.Globalization;
using Kvm.Model;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>numa_nodes: one memory-backend-ram per node (bound to host nodes when set) and a -numa node holding its vCPUs, as Proxmox writes them.</summary>
    private static void Numa(Context c)
    {
        if (c.Vm.NumaNodes is not { Count: > 0 } nodes)
            return;
        foreach (var (name, node) in nodes.OrderBy(n => int.Parse(n.Key.AsSpan(4), CultureInfo.InvariantCulture)))
        {
            var id = name[4..];
            var backend = QemuOptions.Of("memory-backend-ram").Add("id", "ram-node" + id).Add("size", node.MemoryMib!.Value.ToString(CultureInfo.InvariantCulture) + "M");
            if (node.HostNodes is { } host)
            {
                if (c.Facts.HostNumaNodes is { } count && CpuList.Parse(host) is { Count: > 0 } hostNodes && hostNodes.Max >= count)
                    c.Error(Attr("numa_nodes").Key(name).Attr("host_nodes"), $"host node {hostNodes.Max} does not exist: this host has nodes 0-{count - 1}.");
                // A list with commas is given as one host-nodes= per range.
                foreach (var range in host.Split(','))
                    backend.Add("host-nodes", range);
                backend.Add("policy", node.Policy ?? "bind");
            }
            c.Arg("-object", backend.ToString());
            var numa = QemuOptions.Of("node").Add("nodeid", id);
            foreach (var range in node.Cpus!.Split(','))
                numa.Add("cpus", range);
            c.Arg("-numa", numa.Add("memdev", "ram-node" + id).ToString());
        }
    }
}
