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
}
