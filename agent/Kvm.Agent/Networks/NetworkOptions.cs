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

    /// <summary>Definitions of the networks the agent created or adopted.</summary>
    public string DefinitionsDir => Path.Combine(DataDir, "networks");
}
