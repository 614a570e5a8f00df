using System.Text.Json.Nodes;
using Kvm.Agent.Cgroups;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Model;

namespace Kvm.Agent.Vms;

/// <summary>CPU and memory controls of running VMs: the per-VM cgroup, vCPU hot-plug and memory (DIMM) hot-plug.</summary>
public sealed partial class VmRuntime
{
    private const long MiB = 1024 * 1024;
    private static readonly TimeSpan VcpuUnplugWait = TimeSpan.FromSeconds(10);

    private VmCgroups? Cgroups => services.GetService<VmCgroups>();

    /// <summary>Moves a just-started QEMU into its cgroup when the VM sets cpu.limit, cpu.weight or cpu.affinity; kills it when that fails.</summary>
    private async Task ApplyCgroupAtStartAsync(VmMonitor monitor, long vmId, int pid, VmSpec spec)
    {
        if (!VmCgroups.Wanted(spec.Cpu))
            return;
        try
        {
            (Cgroups ?? throw new CgroupException("cpu", "cgroups are not configured on this agent.")).Apply(vmId, pid, spec.Cpu!);
            CpuMemoryLog.CgroupApplied(logger, vmId, Cgroups.Version.ToString(), spec.Cpu!.Limit, spec.Cpu.Weight, spec.Cpu.Affinity);
        }
        catch (CgroupException e)
        {
            await monitor.DisposeAsync();
            await KillAndCleanupAsync(vmId, pid, spec);
            throw AgentProblemException.Invalid(e.Attribute, e.Message);
        }
    }

    private void RemoveCgroup(long vmId)
    {
        if (Cgroups is { Version: not CgroupVersion.None } cgroups && !cgroups.Remove(vmId))
            Log.CleanupFailed(logger, vmId, string.Join(", ", cgroups.DirectoriesOf(vmId)), "cgroup still busy");
    }

    /// <summary>The live part of the CPU and memory settings; null for attributes this file does not handle.</summary>
    private async Task<bool?> ApplyCpuMemoryLiveAsync(VmMonitor monitor, long vmId, string attribute, VmSpec after, CancellationToken cancellationToken)
    {
        switch (attribute)
        {
            case "cpu.limit" or "cpu.weight" or "cpu.affinity":
                return ApplyCgroupLive(monitor, vmId, attribute, after.Cpu ?? new CpuSpec());
            case "cpu.vcpus":
                return await SetVcpusAsync(monitor, vmId, Defaults.Apply(after).Cpu!, cancellationToken);
            case "memory.size_mib":
                return await GrowMemoryAsync(monitor, vmId, Defaults.Apply(after).Memory!, cancellationToken);
            case "memory.shares":
                return true; // read by the auto-balloon loop from the stored spec
            default:
                return null;
        }
    }

    private bool ApplyCgroupLive(VmMonitor monitor, long vmId, string attribute, CpuSpec cpu)
    {
        if (Cgroups is not { } cgroups)
            return false;
        // Nothing set and no cgroup yet: the VM already runs unrestricted.
        if (!VmCgroups.Wanted(cpu) && !cgroups.DirectoriesOf(vmId).Any(Directory.Exists))
            return true;
        try
        {
            cgroups.Apply(vmId, monitor.Pid, cpu);
            CpuMemoryLog.CgroupApplied(logger, vmId, cgroups.Version.ToString(), cpu.Limit, cpu.Weight, cpu.Affinity);
            return true;
        }
        catch (CgroupException e)
        {
            Log.LiveChangeFailed(logger, vmId, attribute, e.Message);
            return false;
        }
    }

    /// <summary>
    /// Plugs vCPUs (QMP device_add of the next free slots query-hotpluggable-cpus lists) or unplugs the ones plugged
    /// live (device_del, then waits for the guest to release them). False when the change needs a restart.
    /// </summary>
    private async Task<bool> SetVcpusAsync(VmMonitor monitor, long vmId, CpuSpec cpu, CancellationToken cancellationToken)
    {
        if (monitor.StartedSpec.Cpu is not { } started || started.MaxVcpus != cpu.MaxVcpus)
            return false; // the topology changed: maxcpus is fixed for the life of the QEMU
        var want = cpu.Vcpus ?? cpu.MaxVcpus;
        var slots = (await monitor.ExecuteAsync("query-hotpluggable-cpus", cancellationToken: cancellationToken) as JsonArray ?? [])
            .OfType<JsonObject>().OrderBy(SlotOrder).ToList();
        var present = slots.Where(s => s["qom-path"] is not null).ToList();
        if (present.Count < want)
        {
            foreach (var slot in slots.Where(s => s["qom-path"] is null).Take(want - present.Count))
            {
                var args = new JsonObject { ["driver"] = slot["type"]!.GetValue<string>(), ["id"] = "cpu" + slots.IndexOf(slot) };
                foreach (var (key, value) in slot["props"]!.AsObject())
                    args[key] = value?.DeepClone();
                await monitor.ExecuteAsync("device_add", args, cancellationToken: cancellationToken);
            }
        }
        else if (present.Count > want)
        {
            // Only vCPUs plugged live have an id to unplug; the ones QEMU started with stay until the next start.
            var removable = present.Where(s => s["qom-path"]!.GetValue<string>().StartsWith("/machine/peripheral/cpu", StringComparison.Ordinal)).Reverse().ToList();
            if (removable.Count < present.Count - want)
                return false;
            foreach (var slot in removable.Take(present.Count - want))
                await monitor.ExecuteAsync("device_del", new JsonObject { ["id"] = slot["qom-path"]!.GetValue<string>()["/machine/peripheral/".Length..] }, cancellationToken: cancellationToken);
            var deadline = DateTime.UtcNow + VcpuUnplugWait;
            while (await OnlineVcpusAsync(monitor, cancellationToken) > want)
            {
                if (DateTime.UtcNow > deadline)
                    return false; // the guest did not release them; the change applies at the next start
                await Task.Delay(200, cancellationToken);
            }
        }
        CpuMemoryLog.VcpusSet(logger, vmId, want, cpu.MaxVcpus);
        return true;
    }

    private static async Task<int> OnlineVcpusAsync(VmMonitor monitor, CancellationToken cancellationToken) =>
        (await monitor.ExecuteAsync("query-cpus-fast", cancellationToken: cancellationToken) as JsonArray)?.Count ?? 0;

    private static (long, long, long, long) SlotOrder(JsonObject slot)
    {
        var props = slot["props"] as JsonObject;
        long Id(string name) => props?[name]?.GetValue<long>() ?? 0;
        return (Id("socket-id"), Id("die-id"), Id("core-id"), Id("thread-id"));
    }

    /// <summary>
    /// Grows the memory of a VM started with memory hot-plug: one pc-dimm (backed by a new memory-backend-ram) for the
    /// difference, as Proxmox does. A smaller size, or a VM started without hot-plug, waits for the next start (false).
    /// </summary>
    private async Task<bool> GrowMemoryAsync(VmMonitor monitor, long vmId, MemorySpec memory, CancellationToken cancellationToken)
    {
        var started = monitor.StartedSpec.Memory;
        if (started?.HotplugMaxMib is not { } max || memory.HotplugMaxMib != max || started.Hugepages is not null)
            return false;
        var dimms = (await monitor.ExecuteAsync("query-memory-devices", cancellationToken: cancellationToken) as JsonArray ?? []).OfType<JsonObject>().ToList();
        var summary = await monitor.ExecuteAsync("query-memory-size-summary", cancellationToken: cancellationToken);
        var current = ((summary?["base-memory"]?.GetValue<long>() ?? 0) + (summary?["plugged-memory"]?.GetValue<long>() ?? 0)) / MiB;
        var target = memory.SizeMib!.Value;
        if (target == current)
            return true;
        if (target < current || target > max || dimms.Count >= QemuCommand.MemorySlots)
            return false;
        var ids = dimms.Select(d => d["data"]?["id"]?.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        var index = 0;
        while (ids.Contains("dimm" + index))
            index++;
        var backend = "mem-dimm" + index;
        await monitor.ExecuteAsync("object-add", new JsonObject { ["qom-type"] = "memory-backend-ram", ["id"] = backend, ["size"] = (target - current) * MiB },
            cancellationToken: cancellationToken);
        try
        {
            await monitor.ExecuteAsync("device_add", new JsonObject { ["driver"] = "pc-dimm", ["id"] = "dimm" + index, ["memdev"] = backend }, cancellationToken: cancellationToken);
        }
        catch (QmpException)
        {
            await monitor.ExecuteAsync("object-del", new JsonObject { ["id"] = backend }, cancellationToken: CancellationToken.None);
            throw;
        }
        // What QEMU now has: pending changes are computed against it (a later shrink to above the start size is still a restart).
        started.SizeMib = target;
        CpuMemoryLog.MemoryGrown(logger, vmId, target - current, target);
        return true;
    }
}

internal static partial class CpuMemoryLog
{
    [LoggerMessage(EventId = 6101, Level = LogLevel.Information, Message = "VM {VmId}: cgroup ({Version}) limit {Limit} CPUs, weight {Weight}, affinity {Affinity}")]
    public static partial void CgroupApplied(ILogger logger, long vmId, string version, double? limit, int? weight, string? affinity);

    [LoggerMessage(EventId = 6102, Level = LogLevel.Information, Message = "VM {VmId}: {Vcpus} of {MaxVcpus} vCPUs online")]
    public static partial void VcpusSet(ILogger logger, long vmId, int vcpus, int maxVcpus);

    [LoggerMessage(EventId = 6103, Level = LogLevel.Information, Message = "VM {VmId}: plugged a {AddedMib} MiB DIMM, memory now {SizeMib} MiB")]
    public static partial void MemoryGrown(ILogger logger, long vmId, long addedMib, long sizeMib);
}
