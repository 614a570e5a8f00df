using System.Text.Json;
using Kvm.Agent.Networks;
using Kvm.Agent.Tests.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.Networks;

/// <summary>
/// A network namespace of the test's own (deleted at the end, also on failure) and the network feature on a
/// test host, configured to run every <c>ip</c> command inside that namespace. Nothing here touches the host's links.
/// </summary>
public sealed class NetworkHarness : IAsyncDisposable
{
    private readonly TestCommandRunner _setup = new();

    private NetworkHarness(string netns, TestCommandRunner runner, TempDir dir, NetworkOptions options, TestAgent agent)
    {
        Netns = netns;
        Runner = runner;
        Dir = dir;
        Options = options;
        Agent = agent;
    }

    public string Netns { get; }
    /// <summary>The agent's runner: what it records is exactly what the agent ran.</summary>
    public TestCommandRunner Runner { get; }
    public TempDir Dir { get; }
    public NetworkOptions Options { get; }
    public TestAgent Agent { get; }
    public HttpClient Client => Agent.Client;
    public Taps Taps => Agent.Services.GetRequiredService<Taps>();

    public static async Task<NetworkHarness> StartAsync()
    {
        var netns = "kvmtest-" + Guid.NewGuid().ToString("N")[..8];
        var setup = new TestCommandRunner();
        await setup.RunCheckedAsync("ip", "netns", "add", netns);
        var runner = new TestCommandRunner();
        var dir = new TempDir(runner);
        try
        {
            var options = new NetworkOptions { DataDir = dir.Sub("data"), Netns = netns };
            var agent = await TestAgent.StartAsync(runner, services => services.AddNetworking(options), app => app.MapNetworks());
            return new NetworkHarness(netns, runner, dir, options, agent);
        }
        catch
        {
            await dir.DisposeAsync();
            await setup.RunAsync(["ip", "netns", "del", netns], TimeSpan.FromSeconds(30));
            throw;
        }
    }

    /// <summary>Runs <c>ip -n NETNS ARGS</c> for the test's own setup and checks.</summary>
    public async Task IpAsync(params string[] args) => await _setup.RunCheckedAsync(["ip", "-n", Netns, .. args]);

    /// <summary>The link as the kernel reports it, or null.</summary>
    public async Task<JsonElement?> LinkAsync(string name)
    {
        var result = await _setup.RunAsync(["ip", "-n", Netns, "-j", "-d", "link", "show", "dev", name], TimeSpan.FromSeconds(10));
        if (!result.Ok)
            return null;
        return JsonDocument.Parse(result.StdOut).RootElement[0].Clone();
    }

    /// <summary>Global addresses of a link as "address/prefix".</summary>
    public async Task<List<string>> AddressesAsync(string name)
    {
        var result = await _setup.RunAsync(["ip", "-n", Netns, "-j", "addr", "show", "dev", name], TimeSpan.FromSeconds(10));
        return [.. JsonDocument.Parse(result.StdOut).RootElement[0].GetProperty("addr_info").EnumerateArray()
            .Where(a => a.GetProperty("scope").GetString() == "global")
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}")];
    }

    /// <summary>Whether this kernel has bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); probed in the namespace.</summary>
    public async Task<bool> VlanFilteringSupportedAsync()
    {
        var result = await _setup.RunAsync(["ip", "-n", Netns, "link", "add", "name", "kvmprobe", "type", "bridge", "vlan_filtering", "1"], TimeSpan.FromSeconds(10));
        if (result.Ok)
            await IpAsync("link", "del", "dev", "kvmprobe");
        return result.Ok;
    }

    /// <summary>Every ip command the agent ran targeted the test's namespace.</summary>
    public void AssertAllAgentCommandsStayedInTheNamespace()
    {
        var ipCalls = Runner.Calls.Where(c => c[0] == "ip").ToList();
        Assert.NotEmpty(ipCalls);
        Assert.All(ipCalls, c => Assert.Equal(["ip", "-n", Netns], c.Take(3)));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Agent.DisposeAsync();
            await Dir.DisposeAsync();
        }
        finally
        {
            // Deleting the namespace deletes every bridge and tap made in it.
            await _setup.RunCheckedAsync("ip", "netns", "del", Netns);
        }
    }
}
