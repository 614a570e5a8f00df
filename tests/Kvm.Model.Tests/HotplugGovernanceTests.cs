using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Model.Tests;

/// <summary>
/// <c>hotplug</c>'s <c>cpu</c>, <c>memory</c> and <c>usb</c> govern, as in Proxmox: without them a vCPU change, a memory growth or a USB
/// entry added or removed is a restart change (plans warn); with them it is live. The watchdog action is live.
/// </summary>
public class HotplugGovernanceTests
{
    private static VmSpec Parse(string json) => JsonSerializer.Deserialize<VmSpec>(json, ModelJson.Options)!;

    private static UpdateKind KindOf(string before, string after, string attribute) =>
        Changes.Classify(Parse(before), Parse(after)).Single(c => c.Attribute == attribute).Kind;

    [Theory]
    [InlineData(null, UpdateKind.Restart)]                                   // Proxmox's default: network, disk, usb
    [InlineData("""["cpu"]""", UpdateKind.Live)]
    [InlineData("""["disk","network","usb","memory"]""", UpdateKind.Restart)]
    public void AVcpuChangeIsLiveOnlyWithCpuInHotplug(string? hotplug, UpdateKind kind)
    {
        var h = hotplug is null ? "" : $",\"hotplug\":{hotplug}";
        Assert.Equal(kind, KindOf($$"""{"name":"a","cpu":{"cores":4,"vcpus":2}{{h}}}""", $$"""{"name":"a","cpu":{"cores":4,"vcpus":3}{{h}}}""", "cpu.vcpus"));
    }

    [Fact]
    public void CpuAddedToHotplugInTheSameUpdateIsNotEnough()
    {
        var changes = Changes.Classify(Parse("""{"name":"a","cpu":{"cores":4,"vcpus":2}}"""), Parse("""{"name":"a","cpu":{"cores":4,"vcpus":3},"hotplug":["cpu"]}"""));
        Assert.Contains(new SettingChange("cpu.vcpus", UpdateKind.Restart), changes);
        Assert.Contains(new SettingChange("hotplug", UpdateKind.Live), changes);
    }

    [Fact]
    public void SpellingOutTheEffectiveVcpusChangesNothingAndStaysLive() =>
        Assert.Equal(UpdateKind.Live, KindOf("""{"name":"a","cpu":{"cores":4}}""", """{"name":"a","cpu":{"cores":4,"vcpus":4}}""", "cpu.vcpus"));

    [Theory]
    [InlineData(null, UpdateKind.Restart)]
    [InlineData("""["memory"]""", UpdateKind.Live)]
    [InlineData("""["cpu","usb"]""", UpdateKind.Restart)]
    public void AMemoryGrowthIsLiveOnlyWithMemoryInHotplug(string? hotplug, UpdateKind kind)
    {
        var h = hotplug is null ? "" : $",\"hotplug\":{hotplug}";
        Assert.Equal(kind, KindOf($$"""{"name":"a","memory":{"size_mib":1024,"hotplug_max_mib":4096}{{h}}}""",
            $$"""{"name":"a","memory":{"size_mib":2048,"hotplug_max_mib":4096}{{h}}}""", "memory.size_mib"));
    }

    [Theory]
    // The tablet (default) brings the controller: USB entries come and go live by default.
    [InlineData("""{"name":"a"}""", """{"name":"a","usb_devices":{"usb0":{"host":"1234:5678"}}}""", UpdateKind.Live)]
    [InlineData("""{"name":"a","usb_devices":{"usb0":{"host":"spice"}},"display":{"spice":true}}""", """{"name":"a","display":{"spice":true}}""", UpdateKind.Live)]
    [InlineData("""{"name":"a","hotplug":["disk"]}""", """{"name":"a","hotplug":["disk"],"usb_devices":{"usb0":{"host":"1234:5678"}}}""", UpdateKind.Restart)]
    // No tablet, no USB device: no controller, so the first device (and the last one's removal) waits for a restart.
    [InlineData("""{"name":"a","tablet":false}""", """{"name":"a","tablet":false,"usb_devices":{"usb0":{"host":"1234:5678"}}}""", UpdateKind.Restart)]
    [InlineData("""{"name":"a","tablet":false,"usb_devices":{"usb0":{"host":"1234:5678"}}}""", """{"name":"a","tablet":false}""", UpdateKind.Restart)]
    [InlineData("""{"name":"a","display":{"vga":"none"}}""", """{"name":"a","display":{"vga":"none"},"usb_devices":{"usb0":{"host":"1-2"}}}""", UpdateKind.Restart)]
    public void AUsbEntryComesAndGoesLiveWithUsbInHotplugAndAController(string before, string after, UpdateKind kind) =>
        Assert.Equal(kind, KindOf(before, after, "usb_devices[\"usb0\"]"));

    [Fact]
    public void WithTheControllerThereASecondUsbDeviceIsLiveEvenWithoutATablet() =>
        Assert.Equal(UpdateKind.Live, KindOf(
            """{"name":"a","tablet":false,"usb_devices":{"usb0":{"host":"1234:5678"}}}""",
            """{"name":"a","tablet":false,"usb_devices":{"usb0":{"host":"1234:5678"},"usb1":{"host":"1-2"}}}""", "usb_devices[\"usb1\"]"));

    [Fact]
    public void ChangingAUsbEntryInPlaceIsARestart() =>
        Assert.Equal(UpdateKind.Restart, KindOf(
            """{"name":"a","usb_devices":{"usb0":{"host":"1234:5678"}}}""", """{"name":"a","usb_devices":{"usb0":{"host":"1-2"}}}""", "usb_devices[\"usb0\"].host"));

    [Fact]
    public void TheWatchdogActionIsLiveItsModelAndItsPresenceAreNot()
    {
        const string Before = """{"name":"a","watchdog":{"model":"i6300esb","action":"reset"}}""";
        Assert.Equal([new SettingChange("watchdog.action", UpdateKind.Live)], Changes.Classify(Parse(Before), Parse(Before.Replace("reset", "pause", StringComparison.Ordinal))));
        Assert.Equal(UpdateKind.Restart, KindOf(Before, Before.Replace("i6300esb", "ib700", StringComparison.Ordinal), "watchdog.model"));
        Assert.Equal(UpdateKind.Restart, KindOf("""{"name":"a"}""", Before, "watchdog"));
    }
}
