using System.Globalization;
using System.Net;

namespace Kvm.Agent.Addresses;

/// <summary>
/// Leases from the dnsmasq lease file of each managed network, <c>&lt;data-dir&gt;/networks/&lt;name&gt;.leases</c>
/// (dnsmasq's <c>--dhcp-leasefile</c>). dnsmasq rewrites the file whole, so a read sees either the old or the new set.
/// </summary>
public sealed class DnsmasqLeaseFiles(AgentOptions options, TimeProvider? clock = null) : ILeaseSource
{
    /// <summary>The lease file of a network.</summary>
    public string PathOf(string network) => Path.Combine(options.DataDir, "networks", network + ".leases");

    /// <inheritdoc />
    public async Task<IReadOnlyList<DhcpLease>?> LeasesAsync(string network, CancellationToken cancellationToken)
    {
        string text;
        try
        {
            text = await File.ReadAllTextAsync(PathOf(network), cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        return Parse(text, (clock ?? TimeProvider.System).GetUtcNow());
    }

    /// <summary>
    /// Parses dnsmasq's lease file: IPv4 lines are <c>EXPIRY MAC IP HOSTNAME CLIENT-ID</c> (expiry in epoch seconds, 0 for
    /// infinite; <c>*</c> for an unknown hostname). IPv6 lines follow a <c>duid</c> line and carry an IAID instead of a MAC,
    /// so they cannot be matched by MAC and are skipped. Expired leases and malformed lines are skipped.
    /// </summary>
    public static IReadOnlyList<DhcpLease> Parse(string text, DateTimeOffset now)
    {
        var leases = new List<DhcpLease>();
        foreach (var raw in text.Split('\n'))
        {
            var fields = raw.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 3 || fields[0] == "duid")
                continue;
            if (!long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var expiry))
                continue;
            var mac = fields[1].ToLowerInvariant();
            if (mac.Length != 17 || mac.Count(c => c == ':') != 5)
                continue; // an IPv6 lease: IAID, not a MAC
            if (!IPAddress.TryParse(fields[2], out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
                continue;
            DateTimeOffset? expires = expiry == 0 ? null : DateTimeOffset.FromUnixTimeSeconds(expiry);
            if (expires is { } e && e <= now)
                continue;
            var host = fields.Length > 3 && fields[3] != "*" ? fields[3] : null;
            leases.Add(new DhcpLease(mac, ip.ToString(), expires, host));
        }
        return leases;
    }
}
