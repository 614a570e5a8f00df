using System.Net;
using System.Net.Sockets;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>DHCP on a managed network.</summary>
public sealed class NetworkDhcpSpec
{
    /// <summary>Enabled.</summary>
    [Setting("Serve DHCP.", Default = true, Update = UpdateKind.Live)]
    public bool? Enabled { get; set; }

    /// <summary>Range start.</summary>
    [Setting("First address handed out.", DefaultText = "the subnet's 100th address (the first on subnets smaller than /24)", Update = UpdateKind.Live)]
    public string? RangeStart { get; set; }

    /// <summary>Range end.</summary>
    [Setting("Last address handed out.", DefaultText = "the last usable address of the subnet", Update = UpdateKind.Live)]
    public string? RangeEnd { get; set; }

    /// <summary>Lease time.</summary>
    [Setting("Lease time in seconds.", Default = 3600, Min = 120, Max = 31_536_000, Update = UpdateKind.Live)]
    public long? LeaseTime { get; set; }

    /// <summary>Static leases.</summary>
    [Setting("Fixed addresses by MAC address (`\"bc:24:11:00:00:01\" = { ip = \"192.168.50.10\" }`).",
        KeyPattern = Patterns.Mac, KeyPatternText = "a MAC address (six hex byte pairs separated by ':')", Update = UpdateKind.Live)]
    public Dictionary<string, NetworkStaticLeaseSpec>? StaticLeases { get; set; }
}

/// <summary>A fixed DHCP lease.</summary>
public sealed class NetworkStaticLeaseSpec
{
    /// <summary>IP.</summary>
    [Setting("IPv4 address for this MAC, inside the network's subnet.", Required = true, Update = UpdateKind.Live)]
    public string? Ip { get; set; }

    /// <summary>Host name.</summary>
    [Setting("Host name given to the client (and served by the network's DNS).", Pattern = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
        PatternText = "a host name label (letters, digits and '-')", Update = UpdateKind.Live)]
    public string? Hostname { get; set; }
}

/// <summary>DNS on a managed network.</summary>
public sealed class NetworkDnsSpec
{
    /// <summary>Enabled.</summary>
    [Setting("Serve DNS on the bridge address.", Default = true, Update = UpdateKind.Live)]
    public bool? Enabled { get; set; }

    /// <summary>Domain.</summary>
    [Setting("Local domain: DHCP clients and static leases are resolvable as `<hostname>.<domain>`, and clients get it as their search domain.",
        Pattern = CloudInitSpec.HostnamePattern, PatternText = "a domain name", Update = UpdateKind.Live)]
    public string? Domain { get; set; }

    /// <summary>Upstream servers.</summary>
    [Setting("Upstream name servers for other names. Unset: only local names are answered (the host's resolv.conf is never read).", Update = UpdateKind.Live)]
    public List<string>? Servers { get; set; }
}

/// <summary>Cross-field rules of DHCP, DNS and NAT on a network.</summary>
public static class NetworkServiceRules
{
    /// <summary>The bridge's IPv4 address and prefix, or null.</summary>
    public static (IPAddress Address, int Prefix)? Ipv4Of(NetworkSpec spec) =>
        spec.Address is { } a && IpRules.TryParseCidr(a, AddressFamily.InterNetwork, out var ip, out var prefix) ? (ip, prefix) : null;

    /// <summary>Whether the network needs a dnsmasq.</summary>
    public static bool WantsDnsmasq(NetworkSpec spec) => spec.Dhcp is { Enabled: not false } || spec.Dns is { Enabled: not false };

    /// <summary>The effective DHCP range: the user's bounds, or defaults inside the subnet that avoid the bridge address.</summary>
    public static (IPAddress Start, IPAddress End) RangeOf(NetworkSpec spec)
    {
        var (address, prefix) = Ipv4Of(spec)!.Value;
        var network = ToUInt(address) & Mask(prefix);
        var broadcast = network | ~Mask(prefix);
        var host = ToUInt(address);
        // Large subnets keep their first 99 addresses for static use, like most home routers; small ones hand out all.
        var start = spec.Dhcp?.RangeStart is { } s ? ToUInt(IPAddress.Parse(s)) : prefix <= 24 ? network + 100 : network + 1;
        var end = spec.Dhcp?.RangeEnd is { } e ? ToUInt(IPAddress.Parse(e)) : broadcast - 1;
        if (spec.Dhcp?.RangeStart is null && start == host)
            start++;
        if (spec.Dhcp?.RangeEnd is null && end == host)
            end--;
        return (FromUInt(start), FromUInt(end));
    }

    internal static void Validate(NetworkSpec spec, ValidationContext context, AttrPath path)
    {
        var v4 = Ipv4Of(spec);
        var owned = (spec.Type ?? "bridge") == "bridge";
        if (WantsDnsmasq(spec) || spec.Nat == true)
        {
            var what = spec.Nat == true && !WantsDnsmasq(spec) ? "nat" : spec.Dhcp is not null ? "dhcp" : "dns";
            if (!owned)
                context.Add(path.Attr(what), "needs a bridge the agent owns (type \"bridge\").");
            else if (v4 is null)
                context.Add(path.Attr(what), "needs an IPv4 `address` on the bridge (e.g. \"192.168.50.1/24\").");
        }
        if (v4 is not { } net || spec.Dhcp is not { } dhcp)
        {
            CheckServers(spec, context, path);
            return;
        }
        if (net.Prefix > 30)
            context.Add(path.Attr("address"), "DHCP needs a subnet with room for clients (a prefix of /30 or shorter).");
        var mask = Mask(net.Prefix);
        var subnet = ToUInt(net.Address) & mask;
        bool Inside(uint ip) => (ip & mask) == subnet && ip != subnet && ip != (subnet | ~mask);
        uint? Parse(string? text, AttrPath at)
        {
            if (text is null)
                return null;
            if (!IPAddress.TryParse(text, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork)
            {
                context.Add(at, $"\"{Validator.Printable(text)}\" is not an IPv4 address.");
                return null;
            }
            var value = ToUInt(ip);
            if (!Inside(value))
                context.Add(at, $"{text} is not a host address of the bridge's subnet {FromUInt(subnet)}/{net.Prefix}.");
            else if (value == ToUInt(net.Address))
                context.Add(at, $"{text} is the bridge's own address.");
            return value;
        }
        var at = path.Attr("dhcp");
        var start = Parse(dhcp.RangeStart, at.Attr("range_start"));
        var end = Parse(dhcp.RangeEnd, at.Attr("range_end"));
        if (start is { } s && end is { } e && s > e)
            context.Add(at.Attr("range_end"), $"{dhcp.RangeEnd} comes before range_start {dhcp.RangeStart}.");
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (mac, lease) in dhcp.StaticLeases ?? [])
        {
            var leaseAt = at.Attr("static_leases").Key(mac);
            Parse(lease.Ip, leaseAt.Attr("ip"));
            if (lease.Ip is not null && seen.TryGetValue(lease.Ip, out var other))
                context.Add(leaseAt.Attr("ip"), $"{lease.Ip} is also the static lease of {other}.");
            if (lease.Ip is not null)
                seen[lease.Ip] = mac;
        }
        CheckServers(spec, context, path);
    }

    private static void CheckServers(NetworkSpec spec, ValidationContext context, AttrPath path)
    {
        for (var i = 0; i < (spec.Dns?.Servers?.Count ?? 0); i++)
            if (!IPAddress.TryParse(spec.Dns!.Servers![i], out _))
                context.Add(path.Attr("dns").Attr("servers").At(i), $"\"{Validator.Printable(spec.Dns.Servers[i])}\" is not an IP address.");
    }

    private static uint Mask(int prefix) => prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);

    private static uint ToUInt(IPAddress ip)
    {
        var b = ip.GetAddressBytes();
        return (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
    }

    private static IPAddress FromUInt(uint v) => new([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
}
