using System.Net;
using Kvm.Agent.Host;
using Kvm.Agent.Networks;

namespace Kvm.Agent.Addresses;

/// <summary>One usable neighbour entry: an address some link-layer address answered for.</summary>
public sealed record Neighbor(string Address, string Mac, string Device);

/// <summary>
/// The host's neighbour table (<c>ip neigh show</c>, in the agent's network namespace): the addresses guests on bridges
/// recently used. Entries that never resolved (FAILED, INCOMPLETE) carry no MAC and are dropped.
/// </summary>
public sealed class NeighborTable(ICommandRunner runner, IServiceProvider services)
{
    /// <summary>Bound on the <c>ip</c> call: the table is a hint, never worth waiting for.</summary>
    public static TimeSpan Timeout { get; } = TimeSpan.FromSeconds(2);

    /// <summary>Reads the table; throws <see cref="IOException"/> when <c>ip</c> fails or does not finish in time.</summary>
    public async Task<IReadOnlyList<Neighbor>> ReadAsync(CancellationToken cancellationToken)
    {
        var options = services.GetService<NetworkOptions>();
        List<string> argv = [options?.IpBinary ?? "ip"];
        if (options?.Netns is { } netns)
            argv.AddRange(["-n", netns]);
        argv.AddRange(["neigh", "show"]);
        CommandResult result;
        try
        {
            result = await runner.RunAsync(argv, Timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new IOException($"ip neigh show did not finish within {Timeout.TotalSeconds:0} s.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new IOException($"cannot run ip: {e.Message}", e);
        }
        if (!result.Ok)
            throw new IOException($"ip neigh show failed: {result.StdErr.Trim()}");
        return Parse(result.StdOut);
    }

    /// <summary>
    /// Parses <c>ip neigh show</c>: <c>ADDRESS dev DEV lladdr MAC [router] [proxy] STATE</c>, one entry per line
    /// (<c>10.0.0.5 dev br0 lladdr 52:54:00:12:34:56 REACHABLE</c>). Lines without <c>lladdr</c> are skipped.
    /// </summary>
    public static IReadOnlyList<Neighbor> Parse(string text)
    {
        var neighbors = new List<Neighbor>();
        foreach (var line in text.Split('\n'))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 5 || !IPAddress.TryParse(fields[0], out var ip))
                continue;
            var dev = Array.IndexOf(fields, "dev");
            var lladdr = Array.IndexOf(fields, "lladdr");
            if (dev < 0 || dev + 1 >= fields.Length || lladdr < 0 || lladdr + 1 >= fields.Length)
                continue;
            var state = fields[^1];
            if (state is "FAILED" or "INCOMPLETE")
                continue;
            neighbors.Add(new Neighbor(ip.ToString(), fields[lladdr + 1].ToLowerInvariant(), fields[dev + 1]));
        }
        return neighbors;
    }
}
