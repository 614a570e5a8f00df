using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Model.Tests;

/// <summary>Adding or removing a disk or NIC entry: live when the VM's <c>hotplug</c> allows it, a restart otherwise.</summary>
public class HotplugChangesTests
{
    private static VmSpec Parse(string json) => JsonSerializer.Deserialize<VmSpec>(json, ModelJson.Options)!;

    private static IReadOnlyList<SettingChange> Classify(string before, string after) => Changes.Classify(Parse(before), Parse(after));

    [Fact]
    public void ByDefaultScsiAndVirtioDisksAndNicsComeAndGoLive()
    {
        var changes = Classify(
            """{"name":"a","disks":{"scsi0":{"size_gib":1},"sata1":{"size_gib":1}},"network_interfaces":{"net0":{}}}""",
            """{"name":"a","disks":{"scsi0":{"size_gib":1},"scsi1":{"size_gib":1},"virtio0":{"size_gib":1}},"network_interfaces":{"net1":{}}}""");
        Assert.Equal(
            [
                new SettingChange("disks[\"sata1\"]", UpdateKind.Restart),
                new SettingChange("disks[\"scsi1\"]", UpdateKind.Live),
                new SettingChange("disks[\"virtio0\"]", UpdateKind.Live),
                new SettingChange("network_interfaces[\"net0\"]", UpdateKind.Live),
                new SettingChange("network_interfaces[\"net1\"]", UpdateKind.Live),
            ],
            changes);
    }

    [Fact]
    public void AKindLeftOutOfHotplugIsARestart()
    {
        var changes = Classify(
            """{"name":"a","hotplug":["network"],"disks":{"scsi0":{"size_gib":1}}}""",
            """{"name":"a","hotplug":["network"],"disks":{"scsi0":{"size_gib":1},"scsi1":{"size_gib":1}},"network_interfaces":{"net0":{}}}""");
        Assert.Equal([new SettingChange("disks[\"scsi1\"]", UpdateKind.Restart), new SettingChange("network_interfaces[\"net0\"]", UpdateKind.Live)], changes);
    }

    [Fact]
    public void TurningHotplugOffInTheSameUpdateMakesTheEntryARestart()
    {
        var changes = Classify(
            """{"name":"a","network_interfaces":{"net0":{}}}""",
            """{"name":"a","hotplug":["disk"],"network_interfaces":{"net0":{},"net1":{}}}""");
        Assert.Contains(new SettingChange("network_interfaces[\"net1\"]", UpdateKind.Restart), changes);
        Assert.Contains(new SettingChange("hotplug", UpdateKind.Live), changes);
    }

    [Fact]
    public void ChangingAnEntrysSettingsKeepsTheirOwnKinds()
    {
        var changes = Classify(
            """{"name":"a","disks":{"scsi0":{"size_gib":1}}}""",
            """{"name":"a","disks":{"scsi0":{"size_gib":1,"cache":"writeback"}}}""");
        Assert.Equal([new SettingChange("disks[\"scsi0\"].cache", UpdateKind.Restart)], changes);
    }

    [Fact]
    public void HotplugRejectsUnknownKinds()
    {
        var errors = Kvm.Model.Validation.Validator.Validate(Parse("""{"name":"a","hotplug":["disk","floppy"]}"""));
        Assert.Contains(errors, e => e.Attribute.StartsWith("hotplug", StringComparison.Ordinal));
    }

    [Fact]
    public void NicTrafficSettingsNeedABridgeAndValidVlans()
    {
        var errors = Kvm.Model.Validation.Validator.Validate(Parse(
            """{"name":"a","network_interfaces":{"net0":{"vlan_tag":10,"rate_mbps":1,"firewall":true},"net1":{"bridge":"br0","trunks":["10","300-200","5000"],"firewall_rules":[{"direction":"in","action":"accept","port":22},{"direction":"up","action":"accept","cidr":"10.0.0.1/8"}]}}}"""))
            .Select(e => e.Attribute).ToList();
        Assert.Contains("network_interfaces[\"net0\"].vlan_tag", errors);
        Assert.Contains("network_interfaces[\"net0\"].rate_mbps", errors);
        Assert.Contains("network_interfaces[\"net0\"].firewall", errors);
        Assert.Contains("network_interfaces[\"net1\"].trunks[1]", errors);
        Assert.Contains("network_interfaces[\"net1\"].trunks[2]", errors);
        Assert.DoesNotContain("network_interfaces[\"net1\"].trunks[0]", errors);
        Assert.Contains("network_interfaces[\"net1\"].firewall_rules[0].port", errors);
        Assert.Contains("network_interfaces[\"net1\"].firewall_rules[1].direction", errors);
        Assert.Contains("network_interfaces[\"net1\"].firewall_rules[1].cidr", errors);
    }

    [Fact]
    public void NicTrafficAndDiskLimitsChangeLive()
    {
        var changes = Classify(
            """{"name":"a","disks":{"scsi0":{"size_gib":1}},"network_interfaces":{"net0":{"bridge":"br0"}}}""",
            """{"name":"a","disks":{"scsi0":{"size_gib":1,"mbps_rd":5,"iops":10}},"network_interfaces":{"net0":{"bridge":"br0","vlan_tag":5,"rate_mbps":2,"firewall":true}}}""");
        Assert.All(changes, c => Assert.Equal(UpdateKind.Live, c.Kind));
        Assert.Equal(5, changes.Count);
    }
}
