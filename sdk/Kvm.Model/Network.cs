using System.Net;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>A Linux bridge the user wants.</summary>
public class NetworkSpec : IValidatable
{
    /// <summary>Name.</summary>
    [Setting("Bridge interface name on the host (at most 15 characters).", Required = true,
        Pattern = Patterns.InterfaceName, PatternText = Patterns.InterfaceNameText, Update = UpdateKind.Replace)]
    public string? Name { get; set; }

    /// <summary>Type.</summary>
    [Setting("`bridge`: the agent creates and owns the bridge. `existing`: adopt a bridge that already exists; the agent never changes or deletes it.",
        Default = "bridge", OneOf = ["bridge", "existing"], Update = UpdateKind.Replace)]
    public string? Type { get; set; }

    /// <summary>MTU.</summary>
    [Setting("Bridge MTU.", Min = 68, Max = 65535, Update = UpdateKind.Live)]
    public int? Mtu { get; set; }

    /// <summary>Address.</summary>
    [Setting("Host address on the bridge in CIDR notation (`192.168.50.1/24` or an IPv6 prefix).", Update = UpdateKind.Live)]
    public string? Address { get; set; }

    /// <summary>VLAN filtering.</summary>
    [Setting("Make the bridge VLAN-aware (802.1Q filtering).", Default = false, Update = UpdateKind.Live)]
    public bool? VlanFiltering { get; set; }

    /// <summary>DHCP.</summary>
    [Setting("DHCP for the network, served by a dnsmasq the agent runs on the bridge (and nowhere else). Needs `address` (IPv4).",
        Update = UpdateKind.Live, NullMeansAbsent = true)]
    public NetworkDhcpSpec? Dhcp { get; set; }

    /// <summary>DNS.</summary>
    [Setting("DNS on the bridge address from the same dnsmasq: DHCP clients' names under `domain`, other names forwarded to `servers`.",
        Update = UpdateKind.Live, NullMeansAbsent = true)]
    public NetworkDnsSpec? Dns { get; set; }

    /// <summary>NAT.</summary>
    [Setting("Masquerade traffic from the bridge's subnet leaving through other interfaces (nftables). In the host's own network namespace " +
        "the agent refuses it unless it was started with `--allow-host-nat`.", Default = false, Update = UpdateKind.Live)]
    public bool? Nat { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        NetworkServiceRules.Validate(this, context, path);
        if (Address is not null && !IPNetwork.TryParse(Address, out _) && !IsHostCidr(Address))
            context.Add(path.Attr("address"), $"\"{Validator.Printable(Address)}\" is not an address in CIDR notation.");
        if (Name is "lo" or "eth0" || Name?.StartsWith("eth", StringComparison.Ordinal) == true || Name?.StartsWith("en", StringComparison.Ordinal) == true)
        {
            if (Type != "existing")
                context.Add(path.Attr("name"), $"\"{Name}\" looks like a host uplink; the agent only creates bridges with other names.");
        }
        if (Type == "existing" && (Mtu is not null || Address is not null || VlanFiltering is not null))
            context.Add(path.Attr("type"), "an adopted bridge is never changed: leave mtu, address and vlan_filtering unset.");
    }

    // IPNetwork rejects host bits; an interface address keeps them (192.168.50.1/24).
    private static bool IsHostCidr(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !IPAddress.TryParse(text[..slash], out var ip) || !int.TryParse(text[(slash + 1)..], out var prefix))
            return false;
        return prefix >= 0 && prefix <= (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
    }
}

/// <summary>A network as the agent reports it.</summary>
[Resource("network", "A Linux bridge on a host that VM network interfaces join through their taps.")]
public sealed class Network : NetworkSpec
{
    /// <summary>Owned.</summary>
    [Setting("True when the agent created the bridge and deletes it with the resource.", ReadOnly = true)]
    public bool? Owned { get; set; }

    /// <summary>Link state.</summary>
    [Setting("Operational state of the bridge (`up`, `down`, `missing`).", ReadOnly = true)]
    public string? State { get; set; }

    /// <summary>dnsmasq PID.</summary>
    [Setting("Process ID of the network's dnsmasq while it serves DHCP or DNS.", ReadOnly = true)]
    public long? DnsmasqPid { get; set; }

    /// <summary>Lease file.</summary>
    [Setting("Host path of the network's DHCP lease file (dnsmasq's format: expiry, MAC, IP, host name, client id).", ReadOnly = true)]
    public string? LeaseFile { get; set; }

    /// <summary>MTU in effect.</summary>
    [Setting("MTU in effect on the bridge.", ReadOnly = true)]
    public int? EffectiveMtu { get; set; }
}
