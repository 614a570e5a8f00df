namespace Kvm.Agent.Addresses;

/// <summary>One DHCP lease: which address a MAC holds on a network, until when.</summary>
public sealed record DhcpLease(string Mac, string Address, DateTimeOffset? Expires, string? Hostname);

/// <summary>
/// The DHCP leases of the networks whose DHCP server the agent runs. The addresses feature reads leases only
/// through this interface, so whoever runs DHCP decides where leases live; the default reads dnsmasq lease files.
/// </summary>
public interface ILeaseSource
{
    /// <summary>The current (unexpired) leases of <paramref name="network"/>, or null when the agent serves no DHCP there.</summary>
    Task<IReadOnlyList<DhcpLease>?> LeasesAsync(string network, CancellationToken cancellationToken);
}
