using System.Security.Cryptography;
using System.Text;

namespace Kvm.Agent.Qemu;

/// <summary>Stable MAC addresses for NICs that do not set one.</summary>
public static class MacAddress
{
    /// <summary>
    /// <c>52:xx:xx:xx:xx:xx</c> from a hash of the VM ID and slot (and an optional per-host salt): the same
    /// NIC keeps its address across restarts and agent reinstalls, so DHCP leases and guest network
    /// configs stay valid. 0x52 is unicast and locally administered, like QEMU's own 52:54:00 default;
    /// the other 40 bits keep collisions between hosts that share a VM ID range improbable when each host
    /// passes its own salt.
    /// </summary>
    public static string Generate(long vmId, string slot, string? salt = null)
    {
        ArgumentNullException.ThrowIfNull(slot);
        var input = Encoding.UTF8.GetBytes($"{salt}\n{vmId.ToString(System.Globalization.CultureInfo.InvariantCulture)}\n{slot}");
        var hash = SHA256.HashData(input);
        return string.Create(17, hash, static (span, h) =>
        {
            ReadOnlySpan<byte> bytes = [0x52, h[0], h[1], h[2], h[3], h[4]];
            for (var i = 0; i < 6; i++)
            {
                if (i > 0)
                    span[i * 3 - 1] = ':';
                bytes[i].TryFormat(span[(i * 3)..], out _, "X2", System.Globalization.CultureInfo.InvariantCulture);
            }
        });
    }
}
