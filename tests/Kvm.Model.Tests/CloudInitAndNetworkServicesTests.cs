using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model.Tests;

/// <summary>cloud_init and network DHCP/DNS/NAT in the model: classification, validation with paths, secrets, defaults.</summary>
public class CloudInitAndNetworkServicesTests
{
    private static VmSpec Vm(string json) => JsonSerializer.Deserialize<VmSpec>(json, ModelJson.Options)!;
    private static NetworkSpec Net(string json) => JsonSerializer.Deserialize<NetworkSpec>(json, ModelJson.Options)!;
    private static List<string> Errors(object spec) => [.. Validator.Validate(spec).Select(e => e.ToString())];

    [Fact]
    public void CloudInitContentChangesAreLiveTheSlotNeedsARestartAndAddingTheSeedToo()
    {
        var before = """{"name":"a","cloud_init":{"user_data":"x","user":{"name":"ops"},"on_change":"none"}}""";
        Assert.Equal(
            [
                new SettingChange("cloud_init.datasource", UpdateKind.Live),
                new SettingChange("cloud_init.slot", UpdateKind.Restart),
                new SettingChange("cloud_init.user.password", UpdateKind.Live),
                new SettingChange("cloud_init.user_data", UpdateKind.Live),
                new SettingChange("cloud_init.on_change", UpdateKind.Live),
            ],
            Changes.Classify(Vm(before), Vm("""{"name":"a","cloud_init":{"datasource":"configdrive2","slot":"sata3","user_data":"y","user":{"name":"ops","password":"p"},"on_change":"reboot"}}""")));
        Assert.Equal([new SettingChange("cloud_init", UpdateKind.Restart)], Changes.Classify(Vm("""{"name":"a"}"""), Vm(before)));
        Assert.Equal([new SettingChange("cloud_init.dns", UpdateKind.Live)], Changes.Classify(Vm(before), Vm(before.Replace("\"on_change\"", "\"dns\":{\"servers\":[\"1.1.1.1\"]},\"on_change\"", StringComparison.Ordinal))));
    }

    [Fact]
    public void TheSeedSlotDefaultsToAFreeOneAndClashesAreReported()
    {
        // virtio-scsi (the default controller): a SCSI CD-ROM, readable by every cloud kernel.
        Assert.Equal("scsi30", CloudInitSpec.EffectiveSlot(Vm("""{"name":"a","cloud_init":{}}""")));
        Assert.Equal("scsi29", CloudInitSpec.EffectiveSlot(Vm("""{"name":"a","cdroms":{"scsi30":{}},"cloud_init":{}}""")));
        Assert.Equal("scsi30", CloudInitSpec.EffectiveSlot(Vm("""{"name":"a","machine":"pc","scsi_controller":"virtio-scsi-pci","cloud_init":{}}""")));
        // Other controllers: the machine's IDE/SATA ports.
        Assert.Equal("ide2", CloudInitSpec.EffectiveSlot(Vm("""{"name":"a","scsi_controller":"lsi","cloud_init":{}}""")));
        Assert.Equal("sata5", CloudInitSpec.EffectiveSlot(Vm("""{"name":"a","scsi_controller":"lsi","cdroms":{"ide2":{}},"cloud_init":{}}""")));
        Assert.Equal("ide3", CloudInitSpec.EffectiveSlot(Vm("""{"name":"a","machine":"pc","scsi_controller":"megasas","cloud_init":{}}""")));
        Assert.Equal("ide1", CloudInitSpec.EffectiveSlot(Vm("""{"name":"a","machine":"pc","scsi_controller":"lsi","disks":{"ide3":{"size_gib":1}},"cloud_init":{}}""")));
        Assert.Null(CloudInitSpec.EffectiveSlot(Vm("""{"name":"a"}""")));
        Assert.Equal(["cloud_init.slot: every default seed slot is used by a disk or CD-ROM: choose a free CD-ROM slot."],
            Errors(Vm("""{"name":"a","cdroms":{"scsi30":{},"scsi29":{}},"cloud_init":{}}""")));
        Assert.Equal(["cloud_init.slot: q35 has one IDE unit per bus: use ide0 or ide2 (or a sata or scsi slot)."],
            Errors(Vm("""{"name":"a","cloud_init":{"slot":"ide3"}}""")));
        Assert.Equal(["cloud_init.slot: SATA slots need the q35 machine type."], Errors(Vm("""{"name":"a","machine":"pc","cloud_init":{"slot":"sata1"}}""")));
    }

    [Fact]
    public void BadCloudInitSettingsAreReportedAtTheirPath()
    {
        AssertSame(
            [
                "cloud_init.hostname: is written into the generated meta-data; with `meta_data` set, put `local-hostname` there instead.",
                "cloud_init.on_change: \"reprovision\" rotates the instance-id of the generated meta-data; with `meta_data` set, change its instance-id yourself.",
                "cloud_init.network_config: replaces the network configuration generated from `ip_config` and `dns`: set one or the other.",
                "cloud_init.ip_config[\"net0\"].ipv4.address: \"10.0.0.300/24\" is not \"dhcp\" or an IPv4 address in CIDR notation.",
                "cloud_init.ip_config[\"net0\"].ipv6.gateway: applies to static addresses only; \"auto\" gets its gateway from the network.",
                "cloud_init.dns.servers[0]: \"dns.example\" is not an IP address.",
            ],
            ErrorsAnyOrder(Vm("""
                {"name":"a","network_interfaces":{"net0":{}},"cloud_init":{"hostname":"h","meta_data":"m","on_change":"reprovision","network_config":"n",
                 "ip_config":{"net0":{"ipv4":{"address":"10.0.0.300/24"},"ipv6":{"address":"auto","gateway":"fd00::1"}}},"dns":{"servers":["dns.example"]}}}
                """)));
        Assert.Contains("cloud_init.user.ssh_keys[0]", string.Join('\n', Errors(Vm("""{"name":"a","cloud_init":{"user":{"name":"ops","ssh_keys":["not a key\nruncmd: x"]}}}"""))), StringComparison.Ordinal);
        Assert.Contains("cloud_init.hostname: the VM name \"a_b\" is not a host name; set `hostname`.", Errors(Vm("""{"name":"a_b","cloud_init":{}}""")));
        Assert.Equal(["cloud_init.network_config: must be JSON for datasource \"configdrive2\" (OpenStack layout)."],
            Errors(Vm("""{"name":"a","cloud_init":{"datasource":"configdrive2","network_config":"version: 2"}}""")));
    }

    [Fact]
    public void SecretsAreFingerprintedRestoredOnlyWhenTheyMatchAndKeptOnARoundTrip()
    {
        var stored = Vm("""{"name":"a","cloud_init":{"user_data":"#cloud-config","user":{"name":"ops","password":"pw"}}}""");
        var shown = Vm("""{"name":"a","cloud_init":{"user_data":"#cloud-config","user":{"name":"ops","password":"pw"}}}""");
        Secrets.Redact(shown);
        Assert.Equal(Secrets.Fingerprint("cloud_init.user_data", "#cloud-config"), shown.CloudInit!.UserData);
        Assert.Equal(Secrets.Fingerprint("cloud_init.user.password", "pw"), shown.CloudInit.User!.Password);
        Assert.Equal("ops", shown.CloudInit.User.Name);
        // Salted by path: the same secret in two settings gives two fingerprints.
        Assert.NotEqual(Secrets.Fingerprint("cloud_init.user_data", "pw"), shown.CloudInit.User.Password);

        var roundTrip = Vm(JsonSerializer.Serialize(shown, ModelJson.Options));
        Secrets.Unredact(roundTrip, stored);
        Assert.Equal(("#cloud-config", "pw"), (roundTrip.CloudInit!.UserData, roundTrip.CloudInit.User!.Password));

        var readBack = (JsonObject)JsonSerializer.SerializeToNode(shown, ModelJson.Options)!;
        Secrets.Restore(readBack, JsonNode.Parse("""{"cloud_init":{"user_data":"#cloud-config","user":{"password":"other"}}}""")!.AsObject(), Schemas.For<Vm>());
        Assert.Equal("#cloud-config", (string)readBack["cloud_init"]!["user_data"]!);
        Assert.Equal(shown.CloudInit.User.Password, (string)readBack["cloud_init"]!["user"]!["password"]!); // drift stays visible
        Assert.True(Schemas.For<CloudInitSpec>().Find("user_data")!.Setting.Sensitive);
        Assert.True(Schemas.For<CloudInitUserSpec>().Find("password")!.Setting.Sensitive);
    }

    [Fact]
    public void DhcpRangesDefaultInsideTheSubnetAndBadSettingsAreReported()
    {
        Assert.Equal(("192.168.50.100", "192.168.50.254"), Range(Net("""{"name":"b","address":"192.168.50.1/24","dhcp":{}}""")));
        Assert.Equal(("10.0.0.2", "10.0.0.6"), Range(Net("""{"name":"b","address":"10.0.0.1/29","dhcp":{}}""")));
        Assert.Equal(("10.1.0.100", "10.1.255.254"), Range(Net("""{"name":"b","address":"10.1.0.1/16","dhcp":{}}""")));
        Assert.Equal(("192.168.50.10", "192.168.50.20"), Range(Net("""{"name":"b","address":"192.168.50.1/24","dhcp":{"range_start":"192.168.50.10","range_end":"192.168.50.20"}}""")));
        Assert.Equal(["nat: needs an IPv4 `address` on the bridge (e.g. \"192.168.50.1/24\")."], Errors(Net("""{"name":"b","nat":true}""")));
        Assert.Equal(["dns: needs a bridge the agent owns (type \"bridge\")."], Errors(Net("""{"name":"b","type":"existing","dns":{}}""")));
        Assert.Equal(["address: DHCP needs a subnet with room for clients (a prefix of /30 or shorter)."], Errors(Net("""{"name":"b","address":"10.0.0.1/31","dhcp":{}}""")));
        Assert.Equal(
            [
                "dhcp.range_start: 192.168.50.1 is the bridge's own address.",
                "dhcp.range_end: 192.168.51.9 is not a host address of the bridge's subnet 192.168.50.0/24.",
                "dhcp.static_leases[\"02:00:00:00:00:02\"].ip: 192.168.50.7 is also the static lease of 02:00:00:00:00:01.",
            ],
            Errors(Net("""
                {"name":"b","address":"192.168.50.1/24","dhcp":{"range_start":"192.168.50.1","range_end":"192.168.51.9",
                 "static_leases":{"02:00:00:00:00:01":{"ip":"192.168.50.7"},"02:00:00:00:00:02":{"ip":"192.168.50.7"}}}}
                """)));
        Assert.Contains("dhcp.static_leases[\"nope\"]", string.Join('\n', Errors(Net("""{"name":"b","address":"192.168.50.1/24","dhcp":{"static_leases":{"nope":{"ip":"192.168.50.7"}}}}"""))), StringComparison.Ordinal);
        Assert.Equal([new SettingChange("dhcp.lease_time", UpdateKind.Live), new SettingChange("nat", UpdateKind.Live)],
            Changes.Classify(Net("""{"name":"b","address":"192.168.50.1/24","dhcp":{}}"""), Net("""{"name":"b","address":"192.168.50.1/24","dhcp":{"lease_time":60000},"nat":true}""")));
    }

    private static List<string> ErrorsAnyOrder(object spec) => Errors(spec);

    private static void AssertSame(IEnumerable<string> expected, IEnumerable<string> actual) =>
        Assert.Equal(expected.Order(StringComparer.Ordinal), actual.Order(StringComparer.Ordinal));

    private static (string, string) Range(NetworkSpec spec)
    {
        Assert.Empty(Errors(spec));
        var (start, end) = NetworkServiceRules.RangeOf(spec);
        return (start.ToString(), end.ToString());
    }
}
