using System.Text;
using System.Text.Json;
using Kvm.Agent.CloudInit;
using Kvm.Model;

namespace Kvm.Agent.Tests.CloudInit;

/// <summary>The pure seed builder: exact user-data, meta-data and network-config text for each shape of input.</summary>
public sealed class SeedBuilderTests
{
    private static readonly Dictionary<string, string> Macs = new() { ["net0"] = "BC:24:11:00:00:01", ["net1"] = "bc:24:11:00:00:02" };

    private static SeedInput Input(string json) =>
        new(Defaults.Apply(JsonSerializer.Deserialize<CloudInitSpec>(json, ModelJson.Options)!), "web-01", Macs);

    private static string Text(SeedContent content, string file) => Encoding.UTF8.GetString(content.Files[file]);

    [Fact]
    public void NoCloudSeedWithUserKeysStaticAndDhcpAddressesAndDns()
    {
        var input = Input("""
            {"hostname":"db-1","user":{"name":"debian","ssh_keys":["ssh-ed25519 AAAAC3Nza key@one"]},
             "ip_config":{"net0":{"ipv4":{"address":"192.168.50.10/24","gateway":"192.168.50.1"},"ipv6":{"address":"auto"}},
                          "net1":{"ipv4":{"address":"dhcp"},"ipv6":{"address":"fd00::5/64","gateway":"fd00::1"}}},
             "dns":{"domain":"lab.example","servers":["192.168.50.1","fd00::1"],"search":["example.org"]}}
            """);
        var seed = SeedBuilder.Build(input, "iid-0011223344556677");
        Assert.Equal("cidata", seed.Label);
        Assert.Equal(["meta-data", "network-config", "user-data"], seed.Files.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("instance-id: \"iid-0011223344556677\"\nlocal-hostname: \"db-1\"\n", Text(seed, "meta-data"));
        Assert.Equal("""
            #cloud-config
            users:
              - name: "debian"
                shell: /bin/bash
                sudo: "ALL=(ALL) NOPASSWD:ALL"
                lock_passwd: true
                ssh_authorized_keys:
                  - "ssh-ed25519 AAAAC3Nza key@one"

            """.Replace("\r", "", StringComparison.Ordinal), Text(seed, "user-data"));
        Assert.Equal("""
            version: 2
            ethernets:
              net0:
                match:
                  macaddress: "bc:24:11:00:00:01"
                dhcp6: false
                accept-ra: true
                addresses:
                  - "192.168.50.10/24"
                gateway4: "192.168.50.1"
                nameservers:
                  addresses: ["192.168.50.1", "fd00::1"]
                  search: ["lab.example", "example.org"]
              net1:
                match:
                  macaddress: "bc:24:11:00:00:02"
                dhcp4: true
                addresses:
                  - "fd00::5/64"
                gateway6: "fd00::1"
                nameservers:
                  addresses: ["192.168.50.1", "fd00::1"]
                  search: ["lab.example", "example.org"]

            """.Replace("\r", "", StringComparison.Ordinal), Text(seed, "network-config"));
    }

    [Fact]
    public void UserValuesReachYamlOnlyAsQuotedScalars()
    {
        // A key comment that tries to start a new YAML key stays inside the string.
        var input = Input("""{"user":{"name":"ops","ssh_keys":["ssh-rsa AAAAB3 x\"\nruncmd: [reboot]"]}}""");
        var userData = SeedBuilder.UserData(input)!;
        Assert.Contains("      - \"ssh-rsa AAAAB3 x\\\"\\nruncmd: [reboot]\"\n", userData, StringComparison.Ordinal);
        Assert.DoesNotContain("\nruncmd:", userData, StringComparison.Ordinal);
    }

    [Fact]
    public void PasswordsAreHashedDeterministicallyAndHashesPassThrough()
    {
        var hash = SeedBuilder.PasswordHash("s3cret pass");
        Assert.StartsWith("$6$", hash, StringComparison.Ordinal);
        Assert.Equal(hash, SeedBuilder.PasswordHash("s3cret pass"));
        Assert.NotEqual(hash, SeedBuilder.PasswordHash("s3cret pasS"));
        Assert.Equal("$y$j9T$abc$def", SeedBuilder.PasswordHash("$y$j9T$abc$def"));
        var userData = SeedBuilder.UserData(Input("""{"user":{"name":"ops","password":"s3cret pass"}}"""))!;
        Assert.DoesNotContain("s3cret", userData, StringComparison.Ordinal);
        Assert.Contains($"    lock_passwd: false\n    passwd: \"{hash}\"\n", userData, StringComparison.Ordinal);
        Assert.EndsWith("ssh_pwauth: true\nchpasswd:\n  expire: false\n", userData, StringComparison.Ordinal);
    }

    [Fact]
    public void OwnUserDataAloneIsVerbatimAndWithAUserIsTheLastPartOfAMultipart()
    {
        const string own = "#cloud-config\nruncmd:\n  - echo hi\n";
        Assert.Equal(own, SeedBuilder.UserData(Input($$"""{"user_data":{{JsonSerializer.Serialize(own)}}}""")));
        var both = SeedBuilder.UserData(Input($$"""{"user":{"name":"ops"},"user_data":{{JsonSerializer.Serialize(own)}}}"""))!;
        Assert.Equal($$"""
            Content-Type: multipart/mixed; boundary="{{SeedBuilder.Boundary}}"
            MIME-Version: 1.0

            --{{SeedBuilder.Boundary}}
            Content-Type: text/cloud-config; charset="utf-8"
            MIME-Version: 1.0
            Content-Transfer-Encoding: 8bit
            Content-Disposition: attachment; filename="kvm-generated.cfg"

            #cloud-config
            merge_how:
              - name: list
                settings: [append]
              - name: dict
                settings: [no_replace, recurse_list]
            users:
              - name: "ops"
                shell: /bin/bash
                sudo: "ALL=(ALL) NOPASSWD:ALL"
                lock_passwd: true
            --{{SeedBuilder.Boundary}}
            Content-Type: text/cloud-config; charset="utf-8"
            MIME-Version: 1.0
            Content-Transfer-Encoding: 8bit
            Content-Disposition: attachment; filename="user-data"

            #cloud-config
            runcmd:
              - echo hi
            --{{SeedBuilder.Boundary}}--

            """.Replace("\r", "", StringComparison.Ordinal), both);
        var script = SeedBuilder.UserData(Input("""{"user":{"name":"ops"},"user_data":"#!/bin/sh\necho hi"}"""))!;
        Assert.Contains("Content-Type: text/x-shellscript; charset=\"utf-8\"", script, StringComparison.Ordinal);
    }

    [Fact]
    public void AnEmptyNoCloudSeedStillHasUserDataAndNoNetworkConfig()
    {
        var seed = SeedBuilder.Build(Input("{}"), "iid-1");
        Assert.Equal("#cloud-config\n{}\n", Text(seed, "user-data"));
        Assert.Equal("instance-id: \"iid-1\"\nlocal-hostname: \"web-01\"\n", Text(seed, "meta-data"));
        Assert.False(seed.Files.ContainsKey("network-config"));
    }

    [Fact]
    public void OwnMetaDataNetworkConfigAndVendorDataReplaceTheGeneratedFiles()
    {
        var seed = SeedBuilder.Build(Input("""{"meta_data":"instance-id: mine\n","network_config":"version: 1\nconfig: []\n","vendor_data":"#cloud-config\npackages: [htop]\n"}"""), "iid-x");
        Assert.Equal("instance-id: mine\n", Text(seed, "meta-data"));
        Assert.Equal("version: 1\nconfig: []\n", Text(seed, "network-config"));
        Assert.Equal("#cloud-config\npackages: [htop]\n", Text(seed, "vendor-data"));
    }

    [Fact]
    public void ConfigDrive2UsesTheOpenStackLayout()
    {
        var input = Input("""
            {"datasource":"configdrive2","user":{"name":"ops","ssh_keys":["ssh-ed25519 AAAA k"]},
             "ip_config":{"net0":{"ipv4":{"address":"10.1.2.3/16","gateway":"10.1.0.1"},"ipv6":{"address":"dhcp"}}},
             "dns":{"servers":["10.1.0.1"]},"vendor_data":"#cloud-config\n{}\n"}
            """);
        var seed = SeedBuilder.Build(input, "iid-abc");
        Assert.Equal("config-2", seed.Label);
        Assert.Equal(["openstack/latest/meta_data.json", "openstack/latest/network_data.json", "openstack/latest/user_data", "openstack/latest/vendor_data.json"],
            seed.Files.Keys.Order(StringComparer.Ordinal));
        var meta = JsonDocument.Parse(seed.Files["openstack/latest/meta_data.json"]).RootElement;
        Assert.Equal(("iid-abc", "web-01", "web-01", "ssh-ed25519 AAAA k"),
            (meta.GetProperty("uuid").GetString(), meta.GetProperty("hostname").GetString(), meta.GetProperty("name").GetString(), meta.GetProperty("public_keys").GetProperty("key0").GetString()));
        Assert.Equal("""
            {
              "links": [
                {
                  "id": "net0",
                  "type": "phy",
                  "ethernet_mac_address": "bc:24:11:00:00:01"
                }
              ],
              "networks": [
                {
                  "id": "net0-ipv4",
                  "link": "net0",
                  "type": "ipv4",
                  "ip_address": "10.1.2.3",
                  "netmask": "255.255.0.0",
                  "routes": [
                    {
                      "network": "0.0.0.0",
                      "netmask": "0.0.0.0",
                      "gateway": "10.1.0.1"
                    }
                  ]
                },
                {
                  "id": "net0-ipv6",
                  "link": "net0",
                  "type": "ipv6_dhcpv6-stateful"
                }
              ],
              "services": [
                {
                  "type": "dns",
                  "address": "10.1.0.1"
                }
              ]
            }

            """.Replace("\r", "", StringComparison.Ordinal), Text(seed, "openstack/latest/network_data.json"));
        Assert.Equal("#cloud-config\n{}\n", JsonDocument.Parse(seed.Files["openstack/latest/vendor_data.json"]).RootElement.GetProperty("cloud-init").GetString());
    }

    [Fact]
    public void TheContentHashIgnoresTheInstanceIdButSeesEverySetting()
    {
        var a = Input("""{"user":{"name":"ops"}}""");
        var hash = SeedBuilder.ContentHash(a);
        Assert.Equal(64, hash.Length);
        Assert.Equal(hash, SeedBuilder.ContentHash(Input("""{"user":{"name":"ops"}}""")));
        Assert.NotEqual(hash, SeedBuilder.ContentHash(Input("""{"user":{"name":"ops2"}}""")));
        Assert.NotEqual(hash, SeedBuilder.ContentHash(Input("""{"user":{"name":"ops"},"datasource":"configdrive2"}""")));
        // on_change decides what a change does, it is not content.
        Assert.Equal(hash, SeedBuilder.ContentHash(Input("""{"user":{"name":"ops"},"on_change":"reprovision"}""")));
        Assert.Equal("iid-" + hash[..16], SeedBuilder.InstanceIdFor(hash));
    }

    [Fact]
    public void TheIsoArgvIsOneArgumentPerValue()
    {
        Assert.Equal(["genisoimage", "-output", "/d/x.iso", "-volid", "cidata", "-joliet", "-rock", "-input-charset", "utf-8", "-quiet", "/d/src dir"],
            CloudInitSeeds.IsoArgv("genisoimage", "/d/x.iso", "cidata", "/d/src dir"));
    }
}
