using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Model.Tests;

public class ChangesTests
{
    private static VmSpec Parse(string json) => JsonSerializer.Deserialize<VmSpec>(json, ModelJson.Options)!;

    private static IReadOnlyList<SettingChange> Classify(string before, string after) => Changes.Classify(Parse(before), Parse(after));

    [Fact]
    public void IdenticalSpecsHaveNoChanges() =>
        Assert.Empty(Classify("""{"name":"a","tags":["x","y"]}""", """{"name":"a","tags":["y","x"]}"""));

    [Fact]
    public void EachChangeIsClassifiedFromItsDeclaration()
    {
        var changes = Classify(
            """{"vm_id":100,"name":"a","cpu":{"cores":1},"disks":{"scsi0":{"size_gib":4}},"network_interfaces":{"net0":{}}}""",
            """{"vm_id":101,"name":"b","cpu":{"cores":2},"disks":{"scsi0":{"size_gib":8,"format":"raw"}},"network_interfaces":{"net0":{"link_up":false}}}""");
        Assert.Equal(
            [
                new SettingChange("vm_id", UpdateKind.Replace),
                new SettingChange("name", UpdateKind.Live),
                new SettingChange("cpu.cores", UpdateKind.Restart),
                new SettingChange("disks[\"scsi0\"].size_gib", UpdateKind.Live),
                new SettingChange("disks[\"scsi0\"].format", UpdateKind.Replace),
                new SettingChange("network_interfaces[\"net0\"].link_up", UpdateKind.Live),
            ],
            changes);
        Assert.Equal(UpdateKind.Replace, Changes.Worst(changes));
    }

    [Fact]
    public void SettingTheDefaultExplicitlyTouchesNothing()
    {
        var change = Assert.Single(Classify("""{"name":"a"}""", """{"name":"a","cpu":{"cores":1}}"""));
        Assert.Equal(new SettingChange("cpu.cores", UpdateKind.Live), change);
    }

    [Fact]
    public void AddingOrRemovingADeviceIsARestartChangeWithoutHotplug()
    {
        var changes = Classify("""{"name":"a","hotplug":[],"disks":{"scsi0":{"size_gib":4}}}""", """{"name":"a","hotplug":[],"disks":{"scsi1":{"size_gib":4}}}""");
        Assert.Equal([new SettingChange("disks[\"scsi0\"]", UpdateKind.Restart), new SettingChange("disks[\"scsi1\"]", UpdateKind.Restart)], changes);
    }
}
