using System.Text.Json.Nodes;
using Kvm.Agent.Addresses;
using Kvm.Agent.GuestAgent;
using Kvm.Client.Operations;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Agent.Tests.GuestAgent;

/// <summary>The pure parts of the addresses feature: the three source formats, and when wait_for_ip is satisfied.</summary>
public sealed class AddressSourcesTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

    [Fact]
    public void DnsmasqLeasesKeepCurrentIpv4LeasesOnly()
    {
        var text = """
            1800003600 52:54:00:AA:BB:01 192.168.50.10 web-01 01:52:54:00:aa:bb:01
            0 52:54:00:aa:bb:02 192.168.50.11 * *
            1799999999 52:54:00:aa:bb:03 192.168.50.12 old *
            duid 00:01:00:01:2c:00:00:00:52:54:00:00:00:01
            1800003600 1234567 fd00::10 web-01 00:01:00:01:2c
            garbage line
            1800003600 52:54:00:aa:bb:04 not-an-ip x *
            """;
        var leases = DnsmasqLeaseFiles.Parse(text, Now);
        Assert.Equal(2, leases.Count);
        Assert.Equal(new DhcpLease("52:54:00:aa:bb:01", "192.168.50.10", DateTimeOffset.FromUnixTimeSeconds(1_800_003_600), "web-01"), leases[0]);
        Assert.Equal(new DhcpLease("52:54:00:aa:bb:02", "192.168.50.11", null, null), leases[1]); // 0: infinite lease
    }

    [Fact]
    public async Task AMissingLeaseFileMeansTheAgentServesNoDhcpThere()
    {
        var dir = Directory.CreateTempSubdirectory("kvml-").FullName;
        try
        {
            var files = new DnsmasqLeaseFiles(new AgentOptions { DataDir = dir });
            Assert.Null(await files.LeasesAsync("lab0", default));
            Directory.CreateDirectory(Path.Combine(dir, "networks"));
            await File.WriteAllTextAsync(files.PathOf("lab0"), "0 52:54:00:aa:bb:02 10.9.0.5 * *\n");
            Assert.Equal("10.9.0.5", Assert.Single((await files.LeasesAsync("lab0", default))!).Address);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void NeighbourTableKeepsResolvedEntries()
    {
        var text = """
            10.0.0.5 dev br0 lladdr 52:54:00:12:34:56 REACHABLE
            10.0.0.6 dev br0 lladdr 52:54:00:12:34:57 STALE
            10.0.0.7 dev br0  FAILED
            10.0.0.8 dev br0 INCOMPLETE
            fe80::5054:ff:fe12:3456 dev br0 lladdr 52:54:00:12:34:56 router DELAY
            fd00::5 dev br0 lladdr 52:54:00:12:34:56 PERMANENT
            """;
        var table = NeighborTable.Parse(text);
        Assert.Equal(["10.0.0.5", "10.0.0.6", "fe80::5054:ff:fe12:3456", "fd00::5"], table.Select(n => n.Address));
        Assert.All(table, n => Assert.Equal("br0", n.Device));
        Assert.Equal("52:54:00:12:34:56", table[0].Mac);
    }

    [Fact]
    public void GuestAgentInterfacesDropLinkLocalIpv6()
    {
        var reply = JsonNode.Parse("""
            [{"name":"lo","hardware-address":"00:00:00:00:00:00","ip-addresses":[{"ip-address-type":"ipv4","ip-address":"127.0.0.1","prefix":8}]},
             {"name":"enp0s18","hardware-address":"52:54:00:AB:CD:EF","ip-addresses":[
               {"ip-address-type":"ipv4","ip-address":"10.0.2.15","prefix":24},
               {"ip-address-type":"ipv6","ip-address":"fec0::5054:ff:feab:cdef","prefix":64},
               {"ip-address-type":"ipv6","ip-address":"fe80::5054:ff:feab:cdef","prefix":64}]},
             {"name":"enp0s19","hardware-address":"52:54:00:ab:cd:f0"}]
            """);
        var nics = GuestAgents.ParseInterfaces(reply);
        Assert.Equal(3, nics.Count);
        Assert.Equal(new[] { "10.0.2.15" }, nics[1].Ipv4);
        Assert.Equal(new[] { "fec0::5054:ff:feab:cdef" }, nics[1].Ipv6);
        Assert.Equal("52:54:00:ab:cd:ef", nics[1].Mac);
        Assert.Empty(nics[2].Ipv4);
    }

    private static VmSpec TwoNics(WaitForIpSpec wait) => new()
    {
        Name = "w",
        NetworkInterfaces = new() { ["net10"] = new NicSpec(), ["net2"] = new NicSpec() },
        WaitForIp = wait,
    };

    [Fact]
    public void WaitForIpWaitsForTheFirstSlotByDefaultAndForEveryListedSlot()
    {
        var byDefault = TwoNics(new WaitForIpSpec());
        Assert.Equal(["net2"], IpWait.Slots(byDefault, IpWait.Effective(byDefault)!));
        var listed = TwoNics(new WaitForIpSpec { Interfaces = ["net10", "net2"] });
        Assert.Equal(["net10", "net2"], IpWait.Slots(listed, IpWait.Effective(listed)!));
        Assert.Null(IpWait.Effective(new VmSpec { Name = "w" }));
    }

    [Fact]
    public void WaitForIpIsSatisfiedOnlyByUsableAddressesOfEveryWaitedFamily()
    {
        var wait = Defaults.Apply(new WaitForIpSpec { Ipv6 = true });
        var seen = new VmAddresses
        {
            Ipv4Addresses = new() { ["net0"] = ["169.254.3.4"] },
            Ipv6Addresses = new() { ["net0"] = ["fe80::1"] },
        };
        Assert.False(IpWait.Satisfied(seen, ["net0"], wait));
        seen.Ipv4Addresses["net0"].Add("192.168.50.10");
        Assert.False(IpWait.Satisfied(seen, ["net0"], wait)); // still no global IPv6
        seen.Ipv6Addresses["net0"].Add("fd00::10");
        Assert.True(IpWait.Satisfied(seen, ["net0"], wait));
        Assert.False(IpWait.Satisfied(seen, ["net0", "net1"], wait));
    }

    [Fact]
    public void TheTimeoutMessageNamesEverySourceAndWhatWasSeen()
    {
        var seen = new VmAddresses
        {
            Ipv4Addresses = new() { ["net0"] = [] },
            Ipv6Addresses = new() { ["net0"] = [] },
            Sources =
            [
                new AddressSource { Name = "agent", Status = "skipped", Detail = "the VM has no guest agent channel." },
                new AddressSource { Name = "lease", Status = "ok", Detail = "network lab0: 0 lease(s)." },
                new AddressSource { Name = "neighbor", Status = "unavailable", Detail = "ip neigh show failed: boom" },
            ],
        };
        var message = IpWait.TimeoutMessage(101, seen, ["net0"], Defaults.Apply(new WaitForIpSpec { TimeoutSeconds = 30 }));
        Assert.Equal("VM 101: no IPv4 address on net0 within 30 s (wait_for_ip). Sources tried: agent: skipped (the VM has no guest agent channel); " +
            "lease: ok (network lab0: 0 lease(s)); neighbor: unavailable (ip neigh show failed: boom). Addresses seen: net0: none. " +
            "Enable the guest agent (agent.enabled, qemu-guest-agent in the guest) or put the interface on a managed network with DHCP; " +
            "raise wait_for_ip.timeout_seconds for slow guests.", message);
    }

    [Fact]
    public void WaitForIpSettingsAreValidatedWithTheirPaths()
    {
        var errors = Validator.Validate(new VmSpec
        {
            Name = "w",
            NetworkInterfaces = new() { ["net0"] = new NicSpec() },
            WaitForIp = new WaitForIpSpec { Ipv4 = false, Interfaces = ["net1"], TimeoutSeconds = 0 },
        });
        Assert.Contains(errors, e => e.Attribute == "wait_for_ip.ipv4");
        Assert.Contains(errors, e => e.Attribute == "wait_for_ip.interfaces" && e.Detail.Contains("net1", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Attribute == "wait_for_ip.timeout_seconds");
        Assert.Contains(Validator.Validate(new VmSpec { Name = "w", WaitForIp = new WaitForIpSpec() }), e => e.Attribute == "wait_for_ip");
        Assert.Contains(Validator.Validate(new VmSpec { Name = "w", Agent = new AgentSpec { Type = "usb" } }), e => e.Attribute == "agent.type");
    }
}
