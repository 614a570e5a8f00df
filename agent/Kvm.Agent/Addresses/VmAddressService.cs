using System.Collections.Concurrent;
using System.Net;
using Kvm.Agent.GuestAgent;
using Kvm.Agent.Qemu;
using Kvm.Agent.Vms;
using Kvm.Model;

namespace Kvm.Agent.Addresses;

/// <summary>
/// A VM's addresses from every source the agent has, matched to NIC slots by MAC: the guest agent
/// (<c>guest-network-get-interfaces</c>), DHCP leases of managed networks (<see cref="ILeaseSource"/>) and the neighbour table.
/// Sources are asked in parallel, each bounded by a short timeout; one that does not answer is reported and skipped, so a
/// lookup never blocks. The last result of each running VM is kept for <c>GET /v1/vms</c> (which never asks the sources).
/// </summary>
public sealed class VmAddressService(VmStore store, VmRuntime runtime, GuestAgents agents, ILeaseSource leases, NeighborTable neighbors)
{
    /// <summary>Source names, as they appear in the API.</summary>
    public const string AgentSource = "agent", LeaseSource = "lease", NeighborSource = "neighbor";

    /// <summary>Bound on the guest agent's part of a lookup (connect, sync, command).</summary>
    public static TimeSpan AgentTimeout { get; } = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<long, (DateTimeOffset StartedAt, VmAddresses Addresses)> _lastSeen = new();

    /// <summary>The last observed addresses of a VM in its current run, or null.</summary>
    public VmAddresses? LastSeen(long vmId)
    {
        if (!_lastSeen.TryGetValue(vmId, out var seen))
            return null;
        return runtime.MonitorOf(vmId) is { } monitor && monitor.StartedAt == seen.StartedAt ? seen.Addresses : null;
    }

    /// <summary>Asks every applicable source once; throws 404 for an unknown VM.</summary>
    public async Task<VmAddresses> LookupAsync(long vmId, CancellationToken cancellationToken)
    {
        var stored = store.Get(vmId);
        var spec = Defaults.Apply(stored.Spec);
        var macs = VmRuntime.MacsFor(vmId, spec).OrderBy(m => m.Key, QemuCommand.SlotComparer).ToList();
        var monitor = runtime.MonitorOf(vmId);
        var bridged = (spec.NetworkInterfaces ?? []).Where(n => n.Value.Bridge is not null).ToList();

        var agentTask = AskAgentAsync(vmId, monitor, cancellationToken);
        var leaseTask = AskLeasesAsync(monitor, bridged, cancellationToken);
        var neighborTask = AskNeighborsAsync(monitor, bridged, cancellationToken);
        var (agentStatus, guestNics) = await agentTask;
        var (leaseStatus, leaseList) = await leaseTask;
        var (neighborStatus, neighborList) = await neighborTask;

        var result = new VmAddresses
        {
            VmId = vmId,
            MacAddresses = macs.ToDictionary(m => m.Key, m => m.Value),
            Interfaces = [],
            Sources = [agentStatus, leaseStatus, neighborStatus],
            Ipv4Addresses = [],
            Ipv6Addresses = [],
        };
        foreach (var (slot, mac) in macs)
        {
            var nic = new GuestInterface { Slot = slot, Mac = mac, Ipv4 = [], Ipv6 = [], Sources = [] };
            void Add(string source, string address)
            {
                if (!IPAddress.TryParse(address, out var ip))
                    return;
                var list = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? nic.Ipv4 : nic.Ipv6;
                if (ip.IsIPv6LinkLocal)
                    return;
                if (!list!.Contains(ip.ToString()))
                    list.Add(ip.ToString());
                if (!nic.Sources!.Contains(source))
                    nic.Sources.Add(source);
            }
            foreach (var guest in guestNics.Where(g => string.Equals(g.Mac, mac, StringComparison.OrdinalIgnoreCase)))
            {
                nic.GuestName ??= guest.Name;
                foreach (var ip in guest.Ipv4.Concat(guest.Ipv6))
                    Add(AgentSource, ip);
            }
            foreach (var lease in leaseList.Where(l => string.Equals(l.Mac, mac, StringComparison.OrdinalIgnoreCase)))
                Add(LeaseSource, lease.Address);
            foreach (var neighbor in neighborList.Where(n => string.Equals(n.Mac, mac, StringComparison.OrdinalIgnoreCase)))
                Add(NeighborSource, neighbor.Address);
            result.Interfaces.Add(nic);
            result.Ipv4Addresses[slot] = nic.Ipv4!;
            result.Ipv6Addresses[slot] = nic.Ipv6!;
        }
        result.PrimaryIpv4 = result.Interfaces.SelectMany(i => i.Ipv4!).FirstOrDefault(ip => !ip.StartsWith("169.254.", StringComparison.Ordinal));
        if (monitor is not null)
            _lastSeen[vmId] = (monitor.StartedAt, result);
        else
            _lastSeen.TryRemove(vmId, out _);
        return result;
    }

    private async Task<(AddressSource, IReadOnlyList<GuestNic>)> AskAgentAsync(long vmId, VmMonitor? monitor, CancellationToken cancellationToken)
    {
        if (monitor is null)
            return (Skipped(AgentSource, "the VM is not running."), []);
        if (monitor.StartedSpec.Agent?.Enabled != true)
            return (Skipped(AgentSource, "the VM has no guest agent channel (agent.enabled was off when it started)."), []);
        try
        {
            var nics = await agents.GetInterfacesAsync(vmId, AgentTimeout, cancellationToken);
            return (Ok(AgentSource, $"{nics.Count} interface(s) reported by the guest agent."), nics);
        }
        catch (Exception e) when (e is TimeoutException or IOException or QgaException)
        {
            return (Unavailable(AgentSource, e.Message), []);
        }
    }

    private async Task<(AddressSource, IReadOnlyList<DhcpLease>)> AskLeasesAsync(VmMonitor? monitor, List<KeyValuePair<string, NicSpec>> bridged, CancellationToken cancellationToken)
    {
        if (monitor is null)
            return (Skipped(LeaseSource, "the VM is not running."), []);
        if (bridged.Count == 0)
            return (Skipped(LeaseSource, "no network interface is on a managed network (user-mode networking has no leases the agent can read)."), []);
        var all = new List<DhcpLease>();
        var notes = new List<string>();
        var served = 0;
        foreach (var network in bridged.Select(n => n.Value.Bridge!).Distinct(StringComparer.Ordinal))
        {
            try
            {
                if (await leases.LeasesAsync(network, cancellationToken) is { } list)
                {
                    served++;
                    all.AddRange(list);
                    notes.Add($"network {network}: {list.Count} lease(s)");
                }
                else
                {
                    notes.Add($"network {network}: the agent serves no DHCP there");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                notes.Add($"network {network}: {e.Message}");
            }
        }
        var detail = string.Join("; ", notes) + ".";
        return (served > 0 ? Ok(LeaseSource, detail) : Skipped(LeaseSource, detail), all);
    }

    private async Task<(AddressSource, IReadOnlyList<Neighbor>)> AskNeighborsAsync(VmMonitor? monitor, List<KeyValuePair<string, NicSpec>> bridged, CancellationToken cancellationToken)
    {
        if (monitor is null)
            return (Skipped(NeighborSource, "the VM is not running."), []);
        if (bridged.Count == 0)
            return (Skipped(NeighborSource, "no network interface is on a bridge (the host never sees user-mode guests as neighbours)."), []);
        try
        {
            var table = await neighbors.ReadAsync(cancellationToken);
            return (Ok(NeighborSource, $"{table.Count} neighbour entries on the host."), table);
        }
        catch (IOException e)
        {
            return (Unavailable(NeighborSource, e.Message), []);
        }
    }

    private static AddressSource Ok(string name, string detail) => new() { Name = name, Status = "ok", Detail = detail };
    private static AddressSource Skipped(string name, string detail) => new() { Name = name, Status = "skipped", Detail = detail };
    private static AddressSource Unavailable(string name, string detail) => new() { Name = name, Status = "unavailable", Detail = detail };
}
