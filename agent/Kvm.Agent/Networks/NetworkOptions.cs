namespace Kvm.Agent.Networks;

/// <summary>Where the network feature keeps its definitions and how it runs <c>ip</c> (fed from the agent's options).</summary>
public sealed class NetworkOptions
{
    /// <summary>The agent's data directory.</summary>
    public required string DataDir { get; init; }

    /// <summary>The iproute2 binary.</summary>
    public string IpBinary { get; init; } = "ip";

    /// <summary>
    /// Network namespace the agent's bridges and taps live in (<c>ip -n NS …</c>); null for the host's own.
    /// Tests set it to a namespace they created, so they never touch the host's links.
    /// </summary>
    public string? Netns { get; init; }

    /// <summary>Bound on each <c>ip</c> call.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Where dnsmasq pid files live (cleared by a host reboot); null: the definitions directory.</summary>
    public string? RunDir { get; init; }

    /// <summary>The dnsmasq binary (Debian's dnsmasq-base).</summary>
    public string DnsmasqBinary { get; init; } = "dnsmasq";

    /// <summary>The nft binary (nftables) for <c>nat = true</c>.</summary>
    public string NftBinary { get; init; } = "nft";

    /// <summary>
    /// Allow NAT rules in the host's own network namespace (<c>--allow-host-nat</c>). Off by default: masquerading
    /// from a lab bridge onto the host's uplink is a decision for the host's owner, not for an API call.
    /// </summary>
    public bool AllowHostNat { get; init; }

    /// <summary>The argv prefix that runs a command in <see cref="Netns"/> (empty for the agent's own namespace).</summary>
    public IReadOnlyList<string> NetnsPrefix => Netns is { } ns ? [IpBinary, "netns", "exec", ns] : [];

    /// <summary>dnsmasq pid files.</summary>
    public string PidDir => RunDir is { } run ? Path.Combine(run, "networks") : DefinitionsDir;

    /// <summary>Definitions of the networks the agent created or adopted.</summary>
    public string DefinitionsDir => Path.Combine(DataDir, "networks");
}
