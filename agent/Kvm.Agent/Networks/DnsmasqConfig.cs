using System.Globalization;
using System.Text;
using Kvm.Model;

namespace Kvm.Agent.Networks;

/// <summary>Files of one network's dnsmasq.</summary>
public sealed record DnsmasqPaths(string Config, string Leases, string PidFile, string Log);

/// <summary>
/// The dnsmasq of a network, purely: its configuration file and argv. It serves only the bridge
/// (<c>interface</c> + <c>bind-interfaces</c>, never <c>lo</c>), reads no <c>/etc/resolv.conf</c> and no
/// <c>/etc/hosts</c>, and keeps its own pid and lease files. Every value in the file comes from validated
/// settings (addresses, MACs, host names), so no line can be injected.
/// </summary>
public static class DnsmasqConfig
{
    /// <summary>The configuration file text.</summary>
    public static string Build(NetworkSpec spec, DnsmasqPaths paths)
    {
        var name = spec.Name!;
        var (address, prefix) = NetworkServiceRules.Ipv4Of(spec)!.Value;
        var sb = new StringBuilder();
        // The bridge address is part of the file so that any change of it restarts dnsmasq (it binds at start).
        sb.Append("# kvm-agent: network ").Append(name).Append(", bridge address ").Append(spec.Address).Append('\n');
        sb.Append("interface=").Append(name).Append('\n');
        sb.Append("bind-interfaces\n");
        sb.Append("except-interface=lo\n");
        sb.Append("no-resolv\n");
        sb.Append("no-hosts\n");
        sb.Append("pid-file=").Append(paths.PidFile).Append('\n');
        sb.Append("log-facility=-\n");
        var dns = spec.Dns is { Enabled: not false } d ? d : null;
        if (dns is null)
        {
            sb.Append("port=0\n");
        }
        else
        {
            if (dns.Domain is { } domain)
                sb.Append("domain=").Append(domain).Append('\n').Append("local=/").Append(domain).Append("/\n").Append("expand-hosts\n");
            foreach (var server in dns.Servers ?? [])
                sb.Append("server=").Append(server).Append('\n');
        }
        if (spec.Dhcp is { Enabled: not false } dhcp)
        {
            var (start, end) = NetworkServiceRules.RangeOf(spec);
            var lease = (dhcp.LeaseTime ?? 3600).ToString(CultureInfo.InvariantCulture);
            sb.Append("dhcp-range=").Append(start).Append(',').Append(end).Append(',').Append(Netmask(prefix)).Append(',').Append(lease).Append('\n');
            sb.Append("dhcp-leasefile=").Append(paths.Leases).Append('\n');
            sb.Append("dhcp-authoritative\n");
            sb.Append("dhcp-option=option:router,").Append(address).Append('\n');
            // Without our DNS the clients get no name server from us (dnsmasq would announce itself otherwise).
            sb.Append("dhcp-option=option:dns-server").Append(dns is null ? "" : "," + address).Append('\n');
            if (dns?.Domain is { } domain)
                sb.Append("dhcp-option=option:domain-search,").Append(domain).Append('\n');
            foreach (var (mac, fixedLease) in (dhcp.StaticLeases ?? []).OrderBy(l => l.Key, StringComparer.OrdinalIgnoreCase))
            {
                sb.Append("dhcp-host=").Append(mac.ToLowerInvariant()).Append(',').Append(fixedLease.Ip);
                if (fixedLease.Hostname is { } host)
                    sb.Append(',').Append(host);
                sb.Append('\n');
            }
        }
        return sb.ToString();
    }

    /// <summary>The argv: in the test's namespace when one is configured, in the foreground (the agent owns the process).</summary>
    public static IReadOnlyList<string> Argv(NetworkOptions options, DnsmasqPaths paths) =>
        [.. options.NetnsPrefix, options.DnsmasqBinary, "--keep-in-foreground", "--conf-file=" + paths.Config];

    /// <summary>The paths of a network's dnsmasq.</summary>
    public static DnsmasqPaths PathsFor(NetworkOptions options, string name) => new(
        Path.Combine(options.DefinitionsDir, name + ".dnsmasq.conf"),
        Path.Combine(options.DefinitionsDir, name + ".leases"),
        Path.Combine(options.PidDir, name + ".dnsmasq.pid"),
        Path.Combine(options.DefinitionsDir, name + ".dnsmasq.log"));

    private static string Netmask(int prefix)
    {
        var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
        return string.Join('.', new[] { mask >> 24, (mask >> 16) & 255, (mask >> 8) & 255, mask & 255 }.Select(b => b.ToString(CultureInfo.InvariantCulture)));
    }
}
