using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>What the host does with a bridged NIC's traffic on its tap: VLANs, a rate limit and a firewall; all live.</summary>
public sealed partial class NicSpec
{
    /// <summary>Access VLAN.</summary>
    [Setting("VLAN tag (1–4094) of the interface's untagged traffic, like Proxmox's `tag`: the tap becomes an access port of that " +
        "VLAN on the bridge. Needs a bridge with `vlan_filtering`. Applied live.", Min = 1, Max = 4094, Update = UpdateKind.Live)]
    public int? VlanTag { get; set; }

    /// <summary>Trunk VLANs.</summary>
    [Setting("VLANs the guest may send and receive tagged, like Proxmox's `trunks`: VLAN IDs or ranges (`\"10\"`, `\"100-199\"`). " +
        "Needs a bridge with `vlan_filtering`. Applied live.", Set = true, Pattern = "[0-9]{1,4}(-[0-9]{1,4})?", PatternText = "a VLAN ID or a range such as 100-199",
        Update = UpdateKind.Live)]
    public List<string>? Trunks { get; set; }

    /// <summary>Rate limit.</summary>
    [Setting("Rate limit in megabytes per second (MiB/s), like Proxmox's `rate`, both ways: traffic to the guest is shaped on its tap " +
        "(`tc` htb), traffic from the guest above the rate is dropped as it enters the host (nftables policer). Applied live.",
        Min = 0.001, Max = 100_000, Update = UpdateKind.Live)]
    public double? RateMbps { get; set; }

    /// <summary>Firewall.</summary>
    [Setting("Filter the interface's traffic with `firewall_rules` (nftables on the tap, one table per interface), like Proxmox's `firewall` " +
        "flag, with its default policies: traffic from the guest is accepted unless a rule drops it; traffic to the guest is dropped unless a rule " +
        "accepts it, except ARP, DHCP offers and TCP segments that open no connection (replies to the guest's own connections). The rules " +
        "are stateless: UDP and ICMP replies need a rule of their own. Applied live.",
        Default = false, Update = UpdateKind.Live)]
    public bool? Firewall { get; set; }

    /// <summary>Firewall rules.</summary>
    [Setting("Rules checked in order while `firewall` is on; the first that matches decides.", Update = UpdateKind.Live)]
    public List<FirewallRuleSpec>? FirewallRules { get; set; }

    private void ValidateHostSide(ValidationContext context, AttrPath path)
    {
        foreach (var (name, set) in new[] { ("vlan_tag", VlanTag is not null), ("trunks", Trunks is { Count: > 0 }), ("rate_mbps", RateMbps is not null), ("firewall", Firewall == true) })
            if (set && Bridge is null)
                context.Add(path.Attr(name), "needs a bridged interface (`bridge`): it acts on the interface's tap.");
        for (var i = 0; i < (Trunks?.Count ?? 0); i++)
        {
            var parts = Trunks![i].Split('-');
            if (parts.Any(p => !int.TryParse(p, out var v) || v is < 1 or > 4094) || (parts.Length == 2 && int.Parse(parts[0]) > int.Parse(parts[1])))
                context.Add(path.Attr("trunks").At(i), $"\"{Validator.Printable(Trunks[i])}\" is not a VLAN ID (1–4094) or an ascending range of them.");
        }
    }
}

/// <summary>One firewall rule of a NIC.</summary>
public sealed class FirewallRuleSpec : IValidatable
{
    /// <summary>Direction.</summary>
    [Setting("`in` (to the guest) or `out` (from the guest).", Required = true, OneOf = ["in", "out"], Update = UpdateKind.Live)]
    public string? Direction { get; set; }

    /// <summary>Action.</summary>
    [Setting("`accept` or `drop`.", Required = true, OneOf = ["accept", "drop"], Update = UpdateKind.Live)]
    public string? Action { get; set; }

    /// <summary>Protocol.</summary>
    [Setting("`tcp`, `udp`, `icmp` or `any`.", Default = "any", OneOf = ["tcp", "udp", "icmp", "any"], Update = UpdateKind.Live)]
    public string? Protocol { get; set; }

    /// <summary>Port.</summary>
    [Setting("Destination port (tcp and udp only).", Min = 1, Max = 65535, Update = UpdateKind.Live)]
    public int? Port { get; set; }

    /// <summary>Remote address.</summary>
    [Setting("The other side's IPv4 address or network (`10.0.0.0/8`): the source of incoming, the destination of outgoing traffic. Unset: any.",
        Pattern = "[0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,2})?", PatternText = "an IPv4 address or CIDR", Update = UpdateKind.Live)]
    public string? Cidr { get; set; }

    private static bool IsNetwork(string cidr)
    {
        var parts = cidr.Split('/');
        if (!System.Net.IPAddress.TryParse(parts[0], out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            return false;
        var prefix = 32;
        if (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix is < 0 or > 32))
            return false;
        var bits = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());
        var host = prefix == 32 ? 0u : uint.MaxValue >> prefix;
        return (bits & host) == 0;
    }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (Port is not null && Protocol is not ("tcp" or "udp"))
            context.Add(path.Attr("port"), "a port needs protocol `tcp` or `udp`.");
        if (Cidr is not null && !IsNetwork(Cidr))
            context.Add(path.Attr("cidr"), $"\"{Validator.Printable(Cidr)}\" is not an IPv4 network (host bits must be zero).");
    }
}
