using System.Text;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Model;

namespace Kvm.Agent.Networks;

/// <summary>
/// <c>nat = true</c>: one nftables table per network that masquerades traffic from the bridge's subnet leaving through
/// any other interface. Safety: in the host's own network namespace (the one PID 1 lives in) the agent refuses unless
/// started with <c>--allow-host-nat</c>, so an API call can never open a lab bridge onto the host's uplink by itself.
/// Tests run it only in namespaces they made. Rules go through <c>nft -f FILE</c> (argv, no shell), atomically.
/// </summary>
public sealed class Nat(NetworkOptions options, ICommandRunner runner)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>The nftables table of a network: interface names map one-to-one onto nft identifiers.</summary>
    public static string TableName(string network) =>
        "kvm_nat_" + network.Replace("_", "_u", StringComparison.Ordinal).Replace("-", "_d", StringComparison.Ordinal);

    /// <summary>The ruleset file that (re)defines the network's table in one transaction.</summary>
    public static string Rules(NetworkSpec spec)
    {
        var (address, prefix) = NetworkServiceRules.Ipv4Of(spec)!.Value;
        var bytes = address.GetAddressBytes();
        var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
        var value = (uint)(bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]) & mask;
        var subnet = $"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}/{prefix}";
        var table = TableName(spec.Name!);
        var sb = new StringBuilder();
        // "table; delete table; table {…}": creates or replaces the table atomically, whatever was there.
        sb.Append("table ip ").Append(table).Append('\n');
        sb.Append("delete table ip ").Append(table).Append('\n');
        sb.Append("table ip ").Append(table).Append(" {\n");
        sb.Append("  chain postrouting {\n");
        sb.Append("    type nat hook postrouting priority srcnat; policy accept;\n");
        sb.Append("    ip saddr ").Append(subnet).Append(" ip daddr != ").Append(subnet).Append(" oifname != \"").Append(spec.Name).Append("\" masquerade\n");
        sb.Append("  }\n");
        sb.Append("}\n");
        return sb.ToString();
    }

    /// <summary>
    /// Adds or replaces the network's NAT table, or removes it when <c>nat</c> went off. Idempotent; networks that never
    /// had NAT cause no nft call at all.
    /// </summary>
    public async Task EnsureAsync(NetworkSpec spec, NetworkSpec? previous, CancellationToken cancellationToken)
    {
        if (spec.Nat != true)
        {
            if (previous?.Nat == true)
                await RemoveAsync(spec.Name!, cancellationToken);
            return;
        }
        await RequireAllowedAsync(cancellationToken);
        var file = Path.Combine(options.DefinitionsDir, spec.Name + ".nft");
        Directory.CreateDirectory(options.DefinitionsDir);
        Storage.SafeFile.WriteAtomic(file, Encoding.UTF8.GetBytes(Rules(spec)));
        try
        {
            await RunCheckedAsync([options.NftBinary, "-f", file], cancellationToken);
            await RunCheckedAsync(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], cancellationToken);
        }
        finally
        {
            Storage.SafeFile.DeleteQuietly(file);
        }
    }

    /// <summary>Deletes the network's table; a table that is not there is success.</summary>
    public async Task RemoveAsync(string network, CancellationToken cancellationToken)
    {
        var result = await RunAsync([options.NftBinary, "delete", "table", "ip", TableName(network)], cancellationToken);
        if (!result.Ok && !result.StdErr.Contains("No such file", StringComparison.OrdinalIgnoreCase)
            && !(result.ExitCode == 127 && result.StdErr.Contains(options.NftBinary, StringComparison.Ordinal)))
            throw AgentProblemException.HostCommand($"nft delete table failed: {result.StdErr.Trim()}");
    }

    /// <summary>Whether the table exists (for tests and GET).</summary>
    public async Task<bool> ExistsAsync(string network, CancellationToken cancellationToken) =>
        (await RunAsync([options.NftBinary, "list", "table", "ip", TableName(network)], cancellationToken)).Ok;

    /// <summary>Refuses (422 at <c>nat</c>) NAT in the host's own network namespace unless the agent allows it; checked before anything changes.</summary>
    public async Task RequireAllowedAsync(CancellationToken cancellationToken)
    {
        if (options.AllowHostNat)
            return;
        // The namespace the rules would land in, as seen from inside it, against the host's: PID 1's, or where /proc/1
        // is hidden (containers, sandboxes), the one of the agent's topmost readable ancestor, which is where an agent
        // started with `ip netns exec NS kvm-agent` came from.
        var target = await RunAsync(["readlink", "/proc/self/ns/net"], cancellationToken);
        var host = HostNamespace();
        if (!target.Ok || host.Length == 0 || target.StdOut.Trim() == host)
            throw AgentProblemException.Invalid("nat",
                "the agent runs in the host's own network namespace, where NAT could expose lab networks through the host's uplink; " +
                "start the agent with --allow-host-nat to allow it (or run it in a network namespace of its own).");
    }

    /// <summary>The host's network namespace id (<c>net:[inode]</c>), or "" when it cannot be read.</summary>
    public static string HostNamespace()
    {
        if (NamespaceOf(1) is { } init)
            return init;
        var found = "";
        var pid = Environment.ProcessId;
        for (var depth = 0; pid > 1 && depth < 64; depth++)
        {
            if (NamespaceOf(pid) is { } ns)
                found = ns;
            pid = ParentOf(pid);
        }
        return found;
    }

    private static string? NamespaceOf(int pid)
    {
        try { return new FileInfo($"/proc/{pid}/ns/net").LinkTarget; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static int ParentOf(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("PPid:", StringComparison.Ordinal));
            return line is not null && int.TryParse(line[5..].Trim(), out var parent) ? parent : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
    }

    private async Task RunCheckedAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken)
    {
        var result = await RunAsync(argv, cancellationToken);
        if (!result.Ok)
            throw AgentProblemException.HostCommand($"{argv[0]} {argv[1]} failed: {result.StdErr.Trim()}");
    }

    private Task<CommandResult> RunAsync(IReadOnlyList<string> argv, CancellationToken cancellationToken) =>
        runner.RunAsync([.. options.NetnsPrefix, .. argv], Timeout, cancellationToken);
}
