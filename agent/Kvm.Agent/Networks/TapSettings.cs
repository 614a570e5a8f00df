using System.Globalization;
using System.Text;
using System.Text.Json;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Model;

namespace Kvm.Agent.Networks;

/// <summary>
/// What the host does with a bridged NIC's traffic, on its tap: the bridge VLANs of the port (<c>vlan_tag</c>,
/// <c>trunks</c>), a rate limit (<c>rate_mbps</c>: tc towards the guest, nftables from it) and a firewall (<c>firewall</c>);
/// one nftables table per tap.
/// <see cref="ApplyAsync"/> makes the host match the NIC whatever was there (idempotent, live); the tap's removal takes
/// its VLANs and qdiscs with it, <see cref="RemoveAsync"/> the nftables table. Argv arrays only.
/// </summary>
public sealed class TapSettings(ICommandRunner runner, NetworkOptions options, IpLink ip)
{
    private const int DefaultPvid = 1;

    /// <summary>The nftables table of a tap: rate policing and firewall (agent tap names are valid nft identifiers).</summary>
    public static string TapTable(string tap) => "kvm_tap_" + tap;

    /// <summary>Makes the tap's VLANs, rate limit and firewall what <paramref name="nic"/> asks for.</summary>
    public async Task ApplyAsync(string tap, NicSpec nic, string at, CancellationToken cancellationToken)
    {
        Taps.CheckTapName(tap);
        await VlansAsync(tap, nic, at, cancellationToken);
        await RateAsync(tap, nic.RateMbps, cancellationToken);
        await TableAsync(tap, nic, cancellationToken);
    }

    /// <summary>Removes what outlives the tap (its firewall table). Missing is success.</summary>
    public async Task RemoveAsync(string tap, CancellationToken cancellationToken)
    {
        Taps.CheckTapName(tap);
        var result = await RunAsync([options.NftBinary, "delete", "table", "bridge", TapTable(tap)], cancellationToken);
        if (!result.Ok && !result.StdErr.Contains("No such file", StringComparison.OrdinalIgnoreCase)
            && !(result.ExitCode == 127 && result.StdErr.Contains(options.NftBinary, StringComparison.Ordinal)))
            throw AgentProblemException.HostCommand($"nft delete table {TapTable(tap)} failed: {result.StdErr.Trim()}");
    }

    // ---- VLANs ----

    /// <summary>The VLAN IDs of a port and their flags: the access VLAN is PVID and untagged, trunks are tagged.</summary>
    public static SortedDictionary<int, bool> WantedVlans(NicSpec nic)
    {
        var wanted = new SortedDictionary<int, bool> { [nic.VlanTag ?? DefaultPvid] = true };
        foreach (var trunk in nic.Trunks ?? [])
        {
            var parts = trunk.Split('-');
            var from = int.Parse(parts[0], CultureInfo.InvariantCulture);
            var to = parts.Length > 1 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : from;
            for (var v = from; v <= to; v++)
                wanted.TryAdd(v, false);
        }
        return wanted;
    }

    private async Task VlansAsync(string tap, NicSpec nic, string at, CancellationToken cancellationToken)
    {
        var link = await ip.ShowAsync(tap, cancellationToken) ?? throw AgentProblemException.HostCommand($"tap {tap} does not exist.");
        var bridge = link.Master is { } master ? await ip.ShowAsync(master, cancellationToken) : null;
        var asked = nic.VlanTag is not null || nic.Trunks is { Count: > 0 };
        if (bridge is not { VlanFiltering: true })
        {
            if (asked)
                throw AgentProblemException.Invalid(at + (nic.VlanTag is not null ? ".vlan_tag" : ".trunks"),
                    $"bridge \"{link.Master}\" does not filter VLANs; set vlan_filtering = true on its kvm_network.");
            return;
        }
        var wanted = WantedVlans(nic);
        var current = await CurrentVlansAsync(tap, cancellationToken);
        if (current.SequenceEqual(wanted))
            return;
        foreach (var vid in current.Keys.Where(v => !wanted.ContainsKey(v) || wanted[v] != current[v]))
            await BridgeAsync(["vlan", "del", "dev", tap, "vid", Str(vid)], cancellationToken);
        foreach (var (vid, access) in wanted.Where(w => !current.TryGetValue(w.Key, out var c) || c != w.Value))
            await BridgeAsync(["vlan", "add", "dev", tap, "vid", Str(vid), .. access ? new[] { "pvid", "untagged" } : []], cancellationToken);
    }

    /// <summary>VLAN → is it the port's untagged PVID, from <c>bridge -j vlan show</c>.</summary>
    public async Task<SortedDictionary<int, bool>> CurrentVlansAsync(string tap, CancellationToken cancellationToken)
    {
        var result = await RunAsync(["bridge", "-j", "vlan", "show", "dev", tap], cancellationToken);
        if (!result.Ok)
            throw AgentProblemException.HostCommand($"bridge vlan show dev {tap} failed: {result.StdErr.Trim()}");
        var vlans = new SortedDictionary<int, bool>();
        if (string.IsNullOrWhiteSpace(result.StdOut))
            return vlans;
        using var json = JsonDocument.Parse(result.StdOut);
        foreach (var port in json.RootElement.EnumerateArray())
        {
            if (!port.TryGetProperty("vlans", out var list))
                continue;
            foreach (var vlan in list.EnumerateArray())
            {
                var from = vlan.GetProperty("vlan").GetInt32();
                var to = vlan.TryGetProperty("vlanEnd", out var end) ? end.GetInt32() : from;
                var flags = vlan.TryGetProperty("flags", out var f) ? f.EnumerateArray().Select(x => x.GetString()).ToList() : [];
                for (var v = from; v <= to; v++)
                    vlans[v] = flags.Contains("PVID");
            }
        }
        return vlans;
    }

    // ---- Rate and firewall ----

    private static long Bytes(double mbps) => (long)Math.Round(mbps * 1024 * 1024);

    private static long Burst(double mbps) => Math.Max(1024L * 1024, Bytes(mbps));

    /// <summary>
    /// Proxmox's semantics of <c>rate</c> (MiB/s), both directions: what the tap sends to the guest is shaped (root htb
    /// qdisc); what the guest sends is policed as it enters the host, dropped above the rate (in the tap's nftables
    /// table, see <see cref="TableRules"/>: tc's ingress policer needs act_police, which not every kernel has). Burst:
    /// 1 MiB, or one second's worth above 1 MiB/s.
    /// </summary>
    private async Task RateAsync(string tap, double? rateMbps, CancellationToken cancellationToken)
    {
        // Clearing what may be there fails when nothing is: expected.
        await RunAsync(["tc", "qdisc", "del", "dev", tap, "root"], cancellationToken);
        if (rateMbps is not { } mbps)
            return;
        var rate = Str(Bytes(mbps)) + "bps";
        var burst = Str(Burst(mbps)) + "b";
        await TcAsync(["qdisc", "add", "dev", tap, "root", "handle", "1:", "htb", "default", "1"], cancellationToken);
        await TcAsync(["class", "add", "dev", tap, "parent", "1:", "classid", "1:1", "htb", "rate", rate, "burst", burst], cancellationToken);
    }

    /// <summary>
    /// The tap's nftables table (bridge family; forward, input and output hooks, so traffic to other guests and to the
    /// host alike): what the guest sends passes the rate policer, then the <c>out</c> rules, then is accepted; what it
    /// receives passes ARP, DHCP offers and TCP segments that open no connection, the <c>in</c> rules, then is dropped —
    /// Proxmox's default firewall policies (in: DROP, out: ACCEPT). Null when the NIC needs no table.
    /// </summary>
    public static string? TableRules(string tap, NicSpec nic)
    {
        var firewall = nic.Firewall == true;
        if (!firewall && nic.RateMbps is null)
            return null;
        var table = TapTable(tap);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"table bridge {table}\ndelete table bridge {table}\ntable bridge {table} {{\n");
        foreach (var (hook, rules) in new[] { ("forward", $"iifname \"{tap}\" jump from_guest\n    oifname \"{tap}\" jump to_guest"),
            ("input", $"iifname \"{tap}\" jump from_guest"), ("output", $"oifname \"{tap}\" jump to_guest") })
            sb.Append(CultureInfo.InvariantCulture, $"  chain {hook} {{\n    type filter hook {hook} priority 0; policy accept;\n    {rules}\n  }}\n");
        foreach (var direction in new[] { "out", "in" })
        {
            sb.Append(direction == "out" ? "  chain from_guest {\n" : "  chain to_guest {\n");
            if (direction == "out" && nic.RateMbps is { } mbps)
                sb.Append(CultureInfo.InvariantCulture, $"    limit rate over {Bytes(mbps)} bytes/second burst {Burst(mbps)} bytes drop\n");
            if (firewall)
            {
                // Stateless (bridge connection tracking is not in every kernel, nor in this project's test machine): towards
                // the guest, ARP, DHCP offers and TCP segments that do not open a connection (replies to the guest's own) pass.
                sb.Append("    ether type arp accept\n");
                if (direction == "in")
                    sb.Append("    udp sport 67 udp dport 68 accept\n    tcp flags & (syn | ack) != syn accept\n");
                foreach (var rule in (nic.FirewallRules ?? []).Where(r => r.Direction == direction))
                {
                    var match = new List<string>();
                    if (rule.Cidr is { } cidr)
                        match.Add((direction == "in" ? "ip saddr " : "ip daddr ") + cidr);
                    if (rule.Protocol is "tcp" or "udp" or "icmp")
                        match.Add("meta l4proto " + rule.Protocol);
                    if (rule.Port is { } port)
                        match.Add("th dport " + Str(port));
                    match.Add(rule.Action!);
                    sb.Append("    ").Append(string.Join(' ', match)).Append('\n');
                }
                sb.Append(direction == "in" ? "    drop\n" : "    accept\n");
            }
            sb.Append("  }\n");
        }
        sb.Append("}\n");
        return sb.ToString();
    }

    private async Task TableAsync(string tap, NicSpec nic, CancellationToken cancellationToken)
    {
        if (TableRules(tap, nic) is not { } rules)
        {
            await RemoveAsync(tap, cancellationToken);
            return;
        }
        var dir = Path.Combine(options.DataDir, "taps");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, tap + ".nft");
        Storage.SafeFile.WriteAtomic(file, Encoding.UTF8.GetBytes(rules));
        try
        {
            var result = await RunAsync([options.NftBinary, "-f", file], cancellationToken);
            if (!result.Ok)
                throw AgentProblemException.HostCommand($"nft -f (table of {tap}) failed: {result.StdErr.Trim()}");
        }
        finally
        {
            Storage.SafeFile.DeleteQuietly(file);
        }
    }

    // ---- Commands ----

    private async Task BridgeAsync(string[] args, CancellationToken cancellationToken)
    {
        var result = await RunAsync(["bridge", .. args], cancellationToken);
        if (!result.Ok)
            throw AgentProblemException.HostCommand($"bridge {string.Join(' ', args.Take(2))} failed: {result.StdErr.Trim()}");
    }

    private async Task TcAsync(string[] args, CancellationToken cancellationToken)
    {
        var result = await RunAsync(["tc", .. args], cancellationToken);
        if (!result.Ok)
            throw AgentProblemException.HostCommand($"tc {string.Join(' ', args.Take(2))} failed: {result.StdErr.Trim()}");
    }

    private async Task<CommandResult> RunAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken)
    {
        try
        {
            return await runner.RunAsync([.. options.NetnsPrefix, .. argv], options.CommandTimeout, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw AgentProblemException.HostCommand($"{argv[0]} {string.Join(' ', argv.Skip(1).Take(2))} did not finish within {options.CommandTimeout.TotalSeconds:0} s.");
        }
    }

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);
}
