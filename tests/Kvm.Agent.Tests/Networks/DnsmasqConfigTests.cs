using System.Text.Json;
using Kvm.Agent.Networks;
using Kvm.Model;

namespace Kvm.Agent.Tests.Networks;

/// <summary>The pure dnsmasq configuration, argv and nftables rules of a network: exact text.</summary>
public sealed class DnsmasqConfigTests
{
    private static readonly NetworkOptions Options = new() { DataDir = "/var/lib/kvm-agent", RunDir = "/run/kvm-agent", Netns = "kvmt-1" };
    private static NetworkSpec Net(string json) => JsonSerializer.Deserialize<NetworkSpec>(json, ModelJson.Options)!;

    [Fact]
    public void DhcpDnsAndStaticLeasesOnTheBridgeOnly()
    {
        var spec = Net("""
            {"name":"kvmbr0","address":"192.168.50.1/24",
             "dhcp":{"range_start":"192.168.50.50","lease_time":600,
                     "static_leases":{"BC:24:11:00:00:02":{"ip":"192.168.50.9"},"bc:24:11:00:00:01":{"ip":"192.168.50.8","hostname":"web"}}},
             "dns":{"domain":"lab.test","servers":["9.9.9.9"]}}
            """);
        var paths = DnsmasqConfig.PathsFor(Options, "kvmbr0");
        Assert.Equal(new DnsmasqPaths("/var/lib/kvm-agent/networks/kvmbr0.dnsmasq.conf", "/var/lib/kvm-agent/networks/kvmbr0.leases",
            "/run/kvm-agent/networks/kvmbr0.dnsmasq.pid", "/var/lib/kvm-agent/networks/kvmbr0.dnsmasq.log"), paths);
        Assert.Equal("""
            # kvm-agent: network kvmbr0, bridge address 192.168.50.1/24
            interface=kvmbr0
            bind-interfaces
            except-interface=lo
            no-resolv
            no-hosts
            pid-file=/run/kvm-agent/networks/kvmbr0.dnsmasq.pid
            log-facility=-
            domain=lab.test
            local=/lab.test/
            expand-hosts
            server=9.9.9.9
            dhcp-range=192.168.50.50,192.168.50.254,255.255.255.0,600
            dhcp-leasefile=/var/lib/kvm-agent/networks/kvmbr0.leases
            dhcp-authoritative
            dhcp-option=option:router,192.168.50.1
            dhcp-option=option:dns-server,192.168.50.1
            dhcp-option=option:domain-search,lab.test
            dhcp-host=bc:24:11:00:00:01,192.168.50.8,web
            dhcp-host=bc:24:11:00:00:02,192.168.50.9

            """.Replace("\r", "", StringComparison.Ordinal), DnsmasqConfig.Build(spec, paths));
        Assert.Equal(["ip", "netns", "exec", "kvmt-1", "dnsmasq", "--keep-in-foreground", "--conf-file=/var/lib/kvm-agent/networks/kvmbr0.dnsmasq.conf"],
            DnsmasqConfig.Argv(Options, paths));
        Assert.Equal(["dnsmasq", "--keep-in-foreground", "--conf-file=/d/networks/x.dnsmasq.conf"],
            DnsmasqConfig.Argv(new NetworkOptions { DataDir = "/d" }, DnsmasqConfig.PathsFor(new NetworkOptions { DataDir = "/d" }, "x")));
    }

    [Fact]
    public void DhcpWithoutDnsDisablesTheDnsPortAndAnnouncesNoNameServer()
    {
        var spec = Net("""{"name":"br1","address":"10.0.0.1/29","dhcp":{}}""");
        var text = DnsmasqConfig.Build(spec, DnsmasqConfig.PathsFor(Options, "br1"));
        Assert.Contains("\nport=0\n", text, StringComparison.Ordinal);
        Assert.Contains("\ndhcp-range=10.0.0.2,10.0.0.6,255.255.255.248,3600\n", text, StringComparison.Ordinal);
        Assert.Contains("\ndhcp-option=option:dns-server\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("domain", text, StringComparison.Ordinal);
        Assert.False(NetworkServiceRules.WantsDnsmasq(Net("""{"name":"br1","address":"10.0.0.1/29","dhcp":{"enabled":false}}""")));
    }

    [Fact]
    public void NatRulesReplaceTheNetworksOwnTableAtomically()
    {
        Assert.Equal("""
            table ip kvm_nat_kvm_dlab_u0
            delete table ip kvm_nat_kvm_dlab_u0
            table ip kvm_nat_kvm_dlab_u0 {
              chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                ip saddr 192.168.50.0/24 ip daddr != 192.168.50.0/24 oifname != "kvm-lab_0" masquerade
              }
            }

            """.Replace("\r", "", StringComparison.Ordinal), Nat.Rules(Net("""{"name":"kvm-lab_0","address":"192.168.50.7/24","nat":true}""")));
        Assert.NotEqual(Nat.TableName("a-b"), Nat.TableName("a_b"));
    }
}
