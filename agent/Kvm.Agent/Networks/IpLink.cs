using System.Text.Json;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;

namespace Kvm.Agent.Networks;

/// <summary>A link as <c>ip -j -d link show</c> describes it.</summary>
public sealed record LinkState(string Name, string Kind, int Mtu, bool AdminUp, string? Master, bool VlanFiltering, bool MultiQueue)
{
    /// <summary>A Linux bridge.</summary>
    public bool IsBridge => Kind == "bridge";

    /// <summary>A tun/tap device.</summary>
    public bool IsTunTap => Kind == "tun";
}

/// <summary>
/// iproute2 as argv arrays (the only way the agent changes links), optionally inside a network namespace,
/// and its JSON output read back into <see cref="LinkState"/>.
/// </summary>
public sealed class IpLink(ICommandRunner runner, NetworkOptions options)
{
    /// <summary>The link, or null when no interface has that name.</summary>
    public async Task<LinkState?> ShowAsync(string name, CancellationToken cancellationToken)
    {
        var result = await RunAsync(["-j", "-d", "link", "show", "dev", name], cancellationToken);
        if (!result.Ok)
        {
            if (result.StdErr.Contains("does not exist", StringComparison.OrdinalIgnoreCase))
                return null;
            throw Failed("link show", result);
        }
        using var json = JsonDocument.Parse(result.StdOut);
        return json.RootElement.GetArrayLength() == 0 ? null : Parse(json.RootElement[0]);
    }

    /// <summary>Names of the interfaces enslaved to <paramref name="bridge"/>.</summary>
    public async Task<IReadOnlyList<string>> PortsAsync(string bridge, CancellationToken cancellationToken)
    {
        var result = await RunAsync(["-j", "link", "show", "master", bridge], cancellationToken);
        if (!result.Ok)
            throw Failed("link show master", result);
        if (string.IsNullOrWhiteSpace(result.StdOut))
            return [];
        using var json = JsonDocument.Parse(result.StdOut);
        return [.. json.RootElement.EnumerateArray().Select(l => l.GetProperty("ifname").GetString()!).Order(StringComparer.Ordinal)];
    }

    /// <summary>Runs <c>ip ARGS</c> and fails with a host-command problem when it fails.</summary>
    public async Task RunCheckedAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var result = await RunAsync(args, cancellationToken);
        if (!result.Ok)
            throw Failed(string.Join(' ', args.Take(2)), result);
    }

    /// <summary>Runs <c>ip ARGS</c>.</summary>
    public async Task<CommandResult> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        List<string> argv = [options.IpBinary];
        if (options.Netns is { } netns)
            argv.AddRange(["-n", netns]);
        argv.AddRange(args);
        try
        {
            return await runner.RunAsync(argv, options.CommandTimeout, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw AgentProblemException.HostCommand($"ip {string.Join(' ', args.Take(2))} did not finish within {options.CommandTimeout.TotalSeconds:0} s.");
        }
    }

    private static LinkState Parse(JsonElement link)
    {
        var info = link.TryGetProperty("linkinfo", out var li) ? li : default;
        var data = info.ValueKind == JsonValueKind.Object && info.TryGetProperty("info_data", out var d) ? d : default;
        var kind = info.ValueKind == JsonValueKind.Object && info.TryGetProperty("info_kind", out var k) ? k.GetString()
            : link.TryGetProperty("link_type", out var t) ? t.GetString() : null;
        return new LinkState(
            link.GetProperty("ifname").GetString()!,
            kind ?? "",
            link.TryGetProperty("mtu", out var mtu) ? mtu.GetInt32() : 0,
            link.TryGetProperty("flags", out var flags) && flags.EnumerateArray().Any(f => f.GetString() == "UP"),
            link.TryGetProperty("master", out var master) ? master.GetString() : null,
            data.ValueKind == JsonValueKind.Object && data.TryGetProperty("vlan_filtering", out var vf) && vf.ValueKind == JsonValueKind.Number && vf.GetInt32() == 1,
            data.ValueKind == JsonValueKind.Object && data.TryGetProperty("multi_queue", out var mq) && mq.ValueKind == JsonValueKind.True);
    }

    private static AgentProblemException Failed(string what, CommandResult result) =>
        AgentProblemException.HostCommand($"ip {what} failed: {result.StdErr.Trim()}");
}
