using System.Net;
using Kvm.Agent.Host;
using Kvm.Agent.Networks;
using Kvm.Agent.Problems;
using Kvm.Agent.Tests.Storage;
using Kvm.Model;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.Networks;

/// <summary>
/// Managed networks with the real dnsmasq, inside network namespaces the test makes (the agent's, and one per DHCP
/// client, joined to the bridge by veth pairs): leases handed out to busybox udhcpc and written to the lease file,
/// static leases and local DNS honoured, re-configuration, adoption by a restarted agent, NAT between namespaces
/// only, and no process or file left after delete. Every dnsmasq is killed by PID at the end, also on failure.
/// </summary>
public sealed class DhcpNetworkTests : IAsyncLifetime
{
    private readonly TestCommandRunner _setup = new();
    private readonly List<string> _namespaces = [];
    private readonly string _netns = "kvmt-" + Guid.NewGuid().ToString("N")[..8];
    private TempDir _dir = null!;
    private NetworkOptions _options = null!;
    private TestAgent _agent = null!;

    public async Task InitializeAsync()
    {
        await AddNamespaceAsync(_netns);
        _dir = new TempDir(_setup);
        _options = new NetworkOptions { DataDir = _dir.Sub("data"), RunDir = _dir.Sub("run"), Netns = _netns };
        _agent = await StartAgentAsync(_options);
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        // dnsmasq outlives agents by design: the test stops every one it caused, by PID, before the namespaces go.
        foreach (var pid in DnsmasqPidsUnder(_dir.Path))
            ProcessTable.Signal(pid, Posix.SIGKILL);
        foreach (var ns in Enumerable.Reverse(_namespaces))
            await _setup.RunAsync(["ip", "netns", "del", ns], TimeSpan.FromSeconds(30));
        await _dir.DisposeAsync();
    }

    private Task<TestAgent> StartAgentAsync(NetworkOptions options) =>
        TestAgent.StartAsync(new TestCommandRunner(), services => services.AddNetworking(options), app => app.MapNetworks());

    private HttpClient Client => _agent.Client;

    private async Task AddNamespaceAsync(string name)
    {
        await _setup.RunCheckedAsync("ip", "netns", "add", name);
        _namespaces.Add(name);
        await _setup.RunCheckedAsync("ip", "-n", name, "link", "set", "lo", "up");
    }

    /// <summary>Processes whose command line names a file under <paramref name="dir"/> (only this test's dnsmasqs).</summary>
    private static List<int> DnsmasqPidsUnder(string dir) =>
        [.. Directory.EnumerateDirectories("/proc").Select(p => int.TryParse(Path.GetFileName(p), out var pid) ? pid : 0).Where(pid => pid > 0)
            .Where(pid => ProcessTable.ReadCommandLine(pid) is var cmd && cmd.Contains("--keep-in-foreground") && cmd.Any(a => a.Contains(dir, StringComparison.Ordinal)))];

    /// <summary>A client namespace with a veth whose other end is a port of <paramref name="bridge"/> in the agent's namespace.</summary>
    private async Task<string> AddClientAsync(string bridge, string port, string? mac = null)
    {
        var ns = "kvmc-" + Guid.NewGuid().ToString("N")[..8];
        await AddNamespaceAsync(ns);
        List<string> add = ["ip", "link", "add", "vc0", "netns", ns];
        if (mac is not null)
            add.AddRange(["address", mac]);
        add.AddRange(["type", "veth", "peer", "name", port, "netns", _netns]);
        await _setup.RunCheckedAsync([.. add]);
        await _setup.RunCheckedAsync("ip", "-n", _netns, "link", "set", port, "master", bridge, "up");
        await _setup.RunCheckedAsync("ip", "-n", ns, "link", "set", "vc0", "up");
        return ns;
    }

    /// <summary>busybox udhcpc in the client namespace: the address it was offered and acknowledged.</summary>
    private async Task<string> LeaseAsync(string clientNs, string hostname = "client")
    {
        var result = await _setup.RunAsync(["ip", "netns", "exec", clientNs, "busybox", "udhcpc", "-i", "vc0", "-f", "-q", "-n", "-t", "8", "-T", "1",
            "-s", "/bin/true", "-x", "hostname:" + hostname], TimeSpan.FromSeconds(30));
        Assert.True(result.Ok, $"udhcpc failed: {result.StdOut}{result.StdErr}");
        var line = (result.StdOut + result.StdErr).Split('\n').Single(l => l.Contains("lease of ", StringComparison.Ordinal));
        return line.Split("lease of ")[1].Split(' ')[0];
    }

    private async Task<string> MacOfAsync(string ns)
    {
        var result = await _setup.RunAsync(["ip", "-n", ns, "-j", "link", "show", "dev", "vc0"], TimeSpan.FromSeconds(10));
        return System.Text.Json.JsonDocument.Parse(result.StdOut).RootElement[0].GetProperty("address").GetString()!;
    }

    private async Task<Network> CreateAsync(string json) =>
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", json)).ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.Created);

    private async Task<Network> GetAsync(string name) =>
        await (await Client.GetAsync($"/v1/networks/{name}")).ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.OK);

    private async Task<Network> PutAsync(string name, string json) =>
        await (await Client.SendJsonAsync(HttpMethod.Put, $"/v1/networks/{name}", json)).ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.OK);

    private async Task<string> NetnsIdAsync(string? ns)
    {
        var result = ns is null
            ? await _setup.RunAsync(["readlink", "/proc/self/ns/net"], TimeSpan.FromSeconds(10))
            : await _setup.RunAsync(["ip", "netns", "exec", ns, "readlink", "/proc/self/ns/net"], TimeSpan.FromSeconds(10));
        return result.StdOut.Trim();
    }

    private const string Lab = """
        {"name":"kvmbr1","address":"192.168.77.1/24",
         "dhcp":{"range_start":"192.168.77.100","range_end":"192.168.77.150","lease_time":600,
                 "static_leases":{"02:00:00:00:00:05":{"ip":"192.168.77.5","hostname":"fixed"}}},
         "dns":{"domain":"lab.test"}}
        """;

    [Fact]
    public async Task LeasesAreHandedOutStaticLeasesAndNamesHonouredAndDeleteLeavesNothing()
    {
        var created = await CreateAsync(Lab);
        var pid = (int)created.DnsmasqPid!.Value;
        Assert.Equal(Path.Combine(_options.DefinitionsDir, "kvmbr1.leases"), created.LeaseFile);
        Assert.Contains("--conf-file=" + Path.Combine(_options.DefinitionsDir, "kvmbr1.dnsmasq.conf"), ProcessTable.ReadCommandLine(pid));
        // dnsmasq runs in the agent's (test) namespace, never in the host's.
        Assert.Equal(await NetnsIdAsync(_netns), new FileInfo($"/proc/{pid}/ns/net").LinkTarget);
        Assert.NotEqual(await NetnsIdAsync(null), new FileInfo($"/proc/{pid}/ns/net").LinkTarget);

        var dynamicClient = await AddClientAsync("kvmbr1", "vb1");
        var leased = await LeaseAsync(dynamicClient, "dyn");
        var last = int.Parse(leased.Split('.')[3], System.Globalization.CultureInfo.InvariantCulture);
        Assert.StartsWith("192.168.77.", leased, StringComparison.Ordinal);
        Assert.InRange(last, 100, 150);
        var mac = await MacOfAsync(dynamicClient);
        var leases = await File.ReadAllLinesAsync(created.LeaseFile!);
        var line = Assert.Single(leases, l => l.Contains(mac, StringComparison.Ordinal)).Split(' ');
        Assert.Equal((mac, leased, "dyn"), (line[1], line[2], line[3]));
        Assert.InRange(long.Parse(line[0], System.Globalization.CultureInfo.InvariantCulture) - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 500, 610);

        var fixedClient = await AddClientAsync("kvmbr1", "vb2", "02:00:00:00:00:05");
        Assert.Equal("192.168.77.5", await LeaseAsync(fixedClient, "whatever"));
        Assert.Contains(await File.ReadAllLinesAsync(created.LeaseFile!), l => l.Contains("02:00:00:00:00:05 192.168.77.5 fixed", StringComparison.Ordinal));

        // Local DNS on the bridge address answers the static lease's name.
        await _setup.RunCheckedAsync("ip", "-n", fixedClient, "addr", "add", "192.168.77.5/24", "dev", "vc0");
        var lookup = await _setup.RunAsync(["ip", "netns", "exec", fixedClient, "busybox", "nslookup", "fixed.lab.test", "192.168.77.1"], TimeSpan.FromSeconds(20));
        Assert.True(lookup.Ok, lookup.StdOut + lookup.StdErr);
        Assert.Contains("192.168.77.5", lookup.StdOut, StringComparison.Ordinal);

        // The same settings again: the same dnsmasq. Other settings: a new one with the new configuration.
        Assert.Equal(pid, (await PutAsync("kvmbr1", Lab)).DnsmasqPid);
        var changed = await PutAsync("kvmbr1", Lab.Replace("\"lease_time\":600", "\"lease_time\":900", StringComparison.Ordinal));
        Assert.NotEqual(pid, changed.DnsmasqPid);
        Assert.False(ProcessTable.IsAlive(pid));
        Assert.Contains("dhcp-range=192.168.77.100,192.168.77.150,255.255.255.0,900", await File.ReadAllTextAsync(Path.Combine(_options.DefinitionsDir, "kvmbr1.dnsmasq.conf")), StringComparison.Ordinal);
        // Leases survive the restart (the lease file is dnsmasq's own).
        Assert.Contains(await File.ReadAllLinesAsync(created.LeaseFile!), l => l.Contains(mac, StringComparison.Ordinal));

        // DHCP off: dnsmasq stops (DNS-only networks keep one; here both go).
        var off = await PutAsync("kvmbr1", """{"name":"kvmbr1","address":"192.168.77.1/24"}""");
        Assert.Null(off.DnsmasqPid);
        Assert.False(ProcessTable.IsAlive((int)changed.DnsmasqPid!.Value));
        var on = await PutAsync("kvmbr1", Lab);
        var newest = (int)on.DnsmasqPid!.Value;

        foreach (var (ns, port) in new[] { (dynamicClient, "vb1"), (fixedClient, "vb2") })
        {
            await _setup.RunCheckedAsync("ip", "-n", _netns, "link", "del", "dev", port); // both ends of the pair
            await _setup.RunCheckedAsync("ip", "netns", "del", ns);
            _namespaces.Remove(ns);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/networks/kvmbr1")).StatusCode);
        Assert.False(ProcessTable.IsAlive(newest));
        Assert.Empty(DnsmasqPidsUnder(_dir.Path));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_options.DefinitionsDir));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_options.PidDir));
    }

    [Fact]
    public async Task ARestartedAgentAdoptsTheRunningDnsmasqAndRestartsAMissingOne()
    {
        var pid = (int)(await CreateAsync(Lab)).DnsmasqPid!.Value;
        await _agent.DisposeAsync();
        Assert.True(ProcessTable.IsAlive(pid)); // dnsmasq outlives the agent

        _agent = await StartAgentAsync(_options);
        Assert.Equal(1, await _agent.Services.GetRequiredService<Bridges>().AdoptServicesAsync(CancellationToken.None));
        Assert.Equal(pid, (await GetAsync("kvmbr1")).DnsmasqPid);

        // Killed behind the agent's back: the next agent start serves the network again.
        ProcessTable.Signal(pid, Posix.SIGKILL);
        await Support.Eventually.TrueAsync(() => Task.FromResult(!ProcessTable.IsAlive(pid)), TimeSpan.FromSeconds(5), "dnsmasq gone");
        Assert.Null((await GetAsync("kvmbr1")).DnsmasqPid);
        await _agent.DisposeAsync();
        _agent = await StartAgentAsync(_options);
        Assert.Equal(0, await _agent.Services.GetRequiredService<Bridges>().AdoptServicesAsync(CancellationToken.None));
        var again = (await GetAsync("kvmbr1")).DnsmasqPid;
        Assert.NotNull(again);
        Assert.NotEqual(pid, again);

        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/networks/kvmbr1")).StatusCode);
        Assert.Empty(DnsmasqPidsUnder(_dir.Path));
    }

    [Fact]
    public async Task BadDhcpSettingsAreRefusedWithTheirPathAndChangeNothing()
    {
        foreach (var (body, attribute) in new[]
        {
            ("""{"name":"kvmbr2","dhcp":{}}""", "dhcp"),
            ("""{"name":"kvmbr2","address":"192.168.9.1/24","dhcp":{"range_start":"10.0.0.5"}}""", "dhcp.range_start"),
            ("""{"name":"kvmbr2","address":"192.168.9.1/24","dhcp":{"range_start":"192.168.9.50","range_end":"192.168.9.20"}}""", "dhcp.range_end"),
            ("""{"name":"kvmbr2","address":"192.168.9.1/24","dhcp":{"static_leases":{"02:00:00:00:00:01":{"ip":"192.168.9.1"}}}}""", "dhcp.static_leases[\"02:00:00:00:00:01\"].ip"),
            ("""{"name":"kvmbr2","address":"192.168.9.1/24","dns":{"servers":["not-an-ip"]}}""", "dns.servers[0]"),
            ("""{"name":"kvmbr2","type":"existing","dhcp":{}}""", "dhcp"),
        })
        {
            var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", body)).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
            Assert.Contains(problem.Errors!, e => e.Attribute == attribute);
        }
        var link = await _setup.RunAsync(["ip", "-n", _netns, "link", "show", "dev", "kvmbr2"], TimeSpan.FromSeconds(10));
        Assert.False(link.Ok);
        Assert.Empty(DnsmasqPidsUnder(_dir.Path));
    }

    [Fact]
    public async Task NatMasqueradesTheSubnetBetweenTestNamespacesOnly()
    {
        // An "outside" namespace reachable from the agent's namespace over a /30, with no route back to the lab subnet:
        // a client on the lab bridge reaches it only when its packets are masqueraded.
        var outside = "kvmo-" + Guid.NewGuid().ToString("N")[..8];
        await AddNamespaceAsync(outside);
        await _setup.RunCheckedAsync("ip", "link", "add", "vup", "netns", _netns, "type", "veth", "peer", "name", "vout", "netns", outside);
        await _setup.RunCheckedAsync("ip", "-n", _netns, "addr", "add", "10.99.0.1/30", "dev", "vup");
        await _setup.RunCheckedAsync("ip", "-n", _netns, "link", "set", "vup", "up");
        await _setup.RunCheckedAsync("ip", "-n", outside, "addr", "add", "10.99.0.2/30", "dev", "vout");
        await _setup.RunCheckedAsync("ip", "-n", outside, "link", "set", "vout", "up");

        var network = """{"name":"kvmbr3","address":"192.168.78.1/24","dhcp":{}}""";
        await CreateAsync(network);
        var client = await AddClientAsync("kvmbr3", "vb3");
        var ip = await LeaseAsync(client);
        await _setup.RunCheckedAsync("ip", "-n", client, "addr", "add", ip + "/24", "dev", "vc0");
        await _setup.RunCheckedAsync("ip", "-n", client, "route", "add", "default", "via", "192.168.78.1");
        async Task<bool> PingAsync() =>
            (await _setup.RunAsync(["ip", "netns", "exec", client, "busybox", "ping", "-c", "1", "-W", "2", "10.99.0.2"], TimeSpan.FromSeconds(10))).Ok;
        var nat = _agent.Services.GetRequiredService<Nat>();

        await _setup.RunCheckedAsync("ip", "netns", "exec", _netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
        Assert.False(await PingAsync()); // forwarded but not masqueraded: no way back

        var withNat = await PutAsync("kvmbr3", network.Replace("\"dhcp\":{}", "\"dhcp\":{},\"nat\":true", StringComparison.Ordinal));
        Assert.True(withNat.Nat);
        Assert.True(await nat.ExistsAsync("kvmbr3", CancellationToken.None));
        Assert.True(await PingAsync());
        // The host's own ruleset never saw the table.
        var hostTables = await _setup.RunAsync(["nft", "list", "tables"], TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(Nat.TableName("kvmbr3"), hostTables.StdOut, StringComparison.Ordinal);

        await PutAsync("kvmbr3", network);
        Assert.False(await nat.ExistsAsync("kvmbr3", CancellationToken.None));
        Assert.False(await PingAsync());

        await PutAsync("kvmbr3", network.Replace("\"dhcp\":{}", "\"dhcp\":{},\"nat\":true", StringComparison.Ordinal));
        await _setup.RunCheckedAsync("ip", "-n", _netns, "link", "del", "dev", "vb3");
        await _setup.RunCheckedAsync("ip", "netns", "del", client);
        _namespaces.Remove(client);
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/networks/kvmbr3")).StatusCode);
        Assert.False(await nat.ExistsAsync("kvmbr3", CancellationToken.None));
    }

    [Fact]
    public async Task NatInTheHostsOwnNamespaceIsRefusedBeforeAnythingChanges()
    {
        // An agent without a namespace of its own, as a plain host install: it must refuse NAT and touch nothing.
        var runner = new TestCommandRunner();
        var options = new NetworkOptions { DataDir = _dir.Sub("hostdata") };
        await using var host = await TestAgent.StartAsync(runner, services => services.AddNetworking(options), app => app.MapNetworks());
        var problem = await (await host.Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"kvmnat9","address":"192.168.79.1/24","nat":true}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        Assert.Equal("nat", Assert.Single(problem.Errors!).Attribute);
        Assert.Contains("--allow-host-nat", problem.Errors![0].Detail, StringComparison.Ordinal);
        Assert.Equal(["readlink /proc/self/ns/net"], runner.Calls.Select(c => string.Join(' ', c)));
        Assert.False(Directory.Exists(options.DefinitionsDir) && Directory.EnumerateFileSystemEntries(options.DefinitionsDir).Any());
    }
}
