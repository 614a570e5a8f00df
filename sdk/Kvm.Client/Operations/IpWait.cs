using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

/// <summary><c>wait_for_ip</c> ran out of time; the message names each source the agent tried and what came of it.</summary>
public sealed class WaitForIpTimeoutException(string message) : Exception(message);

/// <summary>
/// <c>wait_for_ip</c>: after a create or a start (never on refresh), polls the agent's non-blocking addresses lookup until
/// every waited interface has an address of each waited family, or the bounded timeout passes.
/// </summary>
public static class IpWait
{
    /// <summary>Time between lookups.</summary>
    public static TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Waits when <paramref name="spec"/> asks for it; returns the satisfying lookup, or null when it does not ask.</summary>
    public static async Task<VmAddresses?> WaitAsync(KvmClient client, long vmId, VmSpec spec, CancellationToken cancellationToken)
    {
        if (Effective(spec) is not { } wait)
            return null;
        var slots = Slots(spec, wait);
        var timeout = TimeSpan.FromSeconds(wait.TimeoutSeconds!.Value);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var seen = await client.GetVmAddressesAsync(vmId, cancellationToken).ConfigureAwait(false);
            if (Satisfied(seen, slots, wait))
                return seen;
            var left = timeout - clock.Elapsed;
            if (left <= TimeSpan.Zero)
                throw new WaitForIpTimeoutException(TimeoutMessage(vmId, seen, slots, wait));
            await Task.Delay(left < PollInterval ? left : PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The effective <c>wait_for_ip</c> (defaults filled), or null when the VM does not wait.</summary>
    public static WaitForIpSpec? Effective(VmSpec spec) =>
        spec.WaitForIp is null || (spec.NetworkInterfaces ?? []).Count == 0 ? null : Defaults.Apply(spec.WaitForIp);

    /// <summary>The slots waited for: the listed ones, or the first network interface slot.</summary>
    public static IReadOnlyList<string> Slots(VmSpec spec, WaitForIpSpec wait) =>
        wait.Interfaces is { Count: > 0 } listed ? [.. listed.Order(StringComparer.Ordinal)]
            : [.. (spec.NetworkInterfaces ?? []).Keys.OrderBy(SlotNumber).Take(1)];

    /// <summary>Whether every waited slot has an address of every waited family (IPv4 link-local does not count).</summary>
    public static bool Satisfied(VmAddresses seen, IReadOnlyList<string> slots, WaitForIpSpec wait) =>
        slots.All(slot =>
            (wait.Ipv4 != true || (seen.Ipv4Addresses?.GetValueOrDefault(slot) ?? []).Any(Counts)) &&
            (wait.Ipv6 != true || (seen.Ipv6Addresses?.GetValueOrDefault(slot) ?? []).Any(Counts)));

    /// <summary>What the user reads when the wait times out: what was missing, every source tried and what came of it.</summary>
    public static string TimeoutMessage(long vmId, VmAddresses seen, IReadOnlyList<string> slots, WaitForIpSpec wait)
    {
        var families = (wait.Ipv4 == true, wait.Ipv6 == true) switch { (true, true) => "IPv4 and IPv6", (false, true) => "IPv6", _ => "IPv4" };
        var sources = string.Join("; ", (seen.Sources ?? []).Select(s => $"{s.Name}: {s.Status} ({s.Detail?.TrimEnd('.')})"));
        var found = string.Join(", ", slots.Select(slot =>
        {
            var all = (seen.Ipv4Addresses?.GetValueOrDefault(slot) ?? []).Concat(seen.Ipv6Addresses?.GetValueOrDefault(slot) ?? []).ToList();
            return $"{slot}: {(all.Count == 0 ? "none" : string.Join(" ", all))}";
        }));
        return $"VM {vmId}: no {families} address on {string.Join(", ", slots)} within {wait.TimeoutSeconds} s (wait_for_ip). " +
            $"Sources tried: {sources}. Addresses seen: {found}. Enable the guest agent (agent.enabled, qemu-guest-agent in the guest) " +
            "or put the interface on a managed network with DHCP; raise wait_for_ip.timeout_seconds for slow guests.";
    }

    private static bool Counts(string address) =>
        IPAddress.TryParse(address, out var ip) && !ip.IsIPv6LinkLocal && !address.StartsWith("169.254.", StringComparison.Ordinal);

    private static int SlotNumber(string slot) =>
        int.TryParse(slot.AsSpan(slot.TrimEnd("0123456789".ToCharArray()).Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : int.MaxValue;
}

/// <summary>A VM's addresses (<c>data.kvm_vm_addresses</c>, Pulumi <c>getVmAddresses</c>): one lookup, never a wait.</summary>
public sealed class VmAddressesLookup(IAgentClients agents) : IDataSourceOperations
{
    /// <inheritdoc />
    public Type ModelType => typeof(VmAddresses);

    /// <inheritdoc />
    public IReadOnlyList<ValidationError> Validate(JsonObject arguments) =>
        arguments["vm_id"] is null ? [new ValidationError("vm_id", "set vm_id to choose the VM.")] : [];

    /// <inheritdoc />
    public async Task<JsonObject> ReadAsync(string host, JsonObject arguments, CancellationToken cancellationToken)
    {
        var vmId = arguments["vm_id"]!.GetValue<long>();
        try
        {
            var seen = await agents.For(host).GetVmAddressesAsync(vmId, cancellationToken).ConfigureAwait(false);
            return (JsonObject)JsonSerializer.SerializeToNode(seen, ModelJsonContext.Default.VmAddresses)!;
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            throw new ModelValidationException([new ValidationError("vm_id", $"no VM {vmId} on this host.")]);
        }
    }
}
