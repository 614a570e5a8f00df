using Kvm.Agent.Qemu;
using Kvm.Model;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>
/// USB hot-plug's pure parts: a hot-plugged USB slot gets exactly its cold-start argv, and the model's idea of when a VM has
/// its USB controller (which decides whether a USB entry can come and go live) is the argv builder's.
/// </summary>
public sealed class UsbHotplugArgsTests
{
    [Fact]
    public void A_hot_plugged_usb_slot_gets_exactly_its_cold_start_pairs()
    {
        var input = GoldenCase.Load("devices-usb-passthrough");
        var argv = QemuCommand.Build(input.Spec, input.Facts, input.Paths);
        foreach (var slot in input.Spec.UsbDevices!.Keys)
        {
            var device = QemuCommand.DeviceArgsOf(input.Spec, input.Facts, input.Paths, slot);
            Assert.True(device.Ok, string.Join("; ", device.Errors.Select(e => e.Detail)));
            var at = 0;
            foreach (var (option, value) in device.Pairs)
                at = Enumerable.Range(at, argv.Count - at - 1).First(i => argv[i] == option && argv[i + 1] == value) + 2;
            Assert.Equal(input.Spec.UsbDevices[slot].IsSpice() ? ["-chardev", "-device"] : ["-device"], device.Pairs.Select(p => p.Option));
        }
    }

    public static TheoryData<string> Specs() => new()
    {
        """{"name":"a"}""",
        """{"name":"a","tablet":false}""",
        """{"name":"a","tablet":false,"usb_devices":{"usb0":{"host":"1234:5678"}}}""",
        """{"name":"a","display":{"vga":"none"}}""",
        """{"name":"a","display":{"vga":"serial0"}}""",
        """{"name":"a","display":{"vga":"virtio"}}""",
        """{"name":"a","pci_devices":{"hostpci0":{"address":"01:00","pcie":true,"primary_gpu":true}}}""",
        """{"name":"a","display":{"vga":"none"},"usb_devices":{"usb3":{"host":"1-2"}}}""",
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void The_model_knows_when_the_argv_has_the_usb_controller(string json)
    {
        var input = GoldenCase.Load(json.Contains("pci_devices", StringComparison.Ordinal) ? "devices-pci-passthrough" : "minimal");
        var spec = System.Text.Json.JsonSerializer.Deserialize<VmSpec>(json, ModelJson.Options)!;
        spec.VmId = 100;
        var argv = QemuCommand.Build(spec, input.Facts, input.Paths);
        Assert.Equal(argv.Any(a => a.StartsWith("qemu-xhci,", StringComparison.Ordinal)), Defaults.Apply(spec).HasUsbController());
    }
}
