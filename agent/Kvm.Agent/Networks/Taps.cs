using System.Globalization;
using System.Text.RegularExpressions;
using Kvm.Agent.Problems;

namespace Kvm.Agent.Networks;

/// <summary>
/// Taps for bridged NICs. Only names of the agent's own form (<c>tap{vm_id}i{n}</c>) are created or removed,
/// and a tap only joins a bridge the agent created or adopted.
/// </summary>
public sealed partial class Taps(IpLink ip, Bridges bridges) : ITapManager
{
    /// <inheritdoc />
    public Task EnsureTapAsync(string tap, string bridge, int? mtu, CancellationToken cancellationToken) =>
        EnsureTapAsync(tap, bridge, mtu, multiQueue: false, cancellationToken);

    /// <summary>
    /// As <see cref="ITapManager.EnsureTapAsync"/>, for a NIC with several queue pairs: QEMU can only open a
    /// persistent tap whose multi_queue flag matches its <c>queues</c>, so a tap with the other flag is re-made.
    /// </summary>
    public async Task EnsureTapAsync(string tap, string bridge, int? mtu, bool multiQueue, CancellationToken cancellationToken)
    {
        CheckTapName(tap);
        await bridges.Gate.WaitAsync(cancellationToken);
        try
        {
            var br = await bridges.RequireBridgeAsync(bridge, cancellationToken);
            var link = await ip.ShowAsync(tap, cancellationToken);
            if (link is { IsTunTap: false })
                throw AgentProblemException.Conflict($"\"{tap}\" exists on the host and is not a tap; the agent leaves it alone.");
            if (link is not null && link.MultiQueue != multiQueue)
            {
                await ip.RunCheckedAsync(["tuntap", "del", "dev", tap, "mode", "tap", .. MultiQueue(link.MultiQueue)], cancellationToken);
                link = null;
            }
            if (link is null)
                await ip.RunCheckedAsync(["tuntap", "add", "dev", tap, "mode", "tap", .. MultiQueue(multiQueue)], cancellationToken);
            // Without an MTU of its own the tap takes the bridge's: a smaller port would lower the bridge's MTU.
            var effective = (mtu ?? br.Mtu).ToString(CultureInfo.InvariantCulture);
            await ip.RunCheckedAsync(["link", "set", "dev", tap, "master", bridge, "mtu", effective, "up"], cancellationToken);
        }
        finally
        {
            bridges.Gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task RemoveTapAsync(string tap, CancellationToken cancellationToken)
    {
        CheckTapName(tap);
        await bridges.Gate.WaitAsync(cancellationToken);
        try
        {
            var link = await ip.ShowAsync(tap, cancellationToken);
            if (link is null)
                return;
            if (!link.IsTunTap)
                throw AgentProblemException.Conflict($"\"{tap}\" exists on the host and is not a tap; the agent leaves it alone.");
            await ip.RunCheckedAsync(["tuntap", "del", "dev", tap, "mode", "tap", .. MultiQueue(link.MultiQueue)], cancellationToken);
        }
        finally
        {
            bridges.Gate.Release();
        }
    }

    /// <summary>Refuses any name that is not one the agent gives its taps.</summary>
    public static void CheckTapName(string tap)
    {
        if (tap.Length > 15 || !TapPattern().IsMatch(tap))
            throw new ArgumentException($"\"{tap}\" is not an agent tap name (tap<vm_id>i<n>, at most 15 characters).", nameof(tap));
    }

    private static string[] MultiQueue(bool on) => on ? ["multi_queue"] : [];

    [GeneratedRegex("^tap[0-9]+i[0-9]+$", RegexOptions.CultureInvariant)]
    private static partial Regex TapPattern();
}
