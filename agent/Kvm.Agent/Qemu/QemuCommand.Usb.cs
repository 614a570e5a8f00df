using System.Globalization;
using Kvm.Model;

namespace Kvm.Agent.Qemu;

// USB passthrough and SPICE USB redirection on the VM's qemu-xhci controller.
public static partial class QemuCommand
{
    /// <summary>USB 2 and USB 3 ports of the controller when the VM has USB devices (the most qemu-xhci offers).</summary>
    internal const int XhciPorts = 15;

    /// <summary>Whether the display section adds the controller (for the tablet).</summary>
    private static bool XhciFromDisplay(Context c) =>
        c.Vm.Tablet == true && VgaDevices.ContainsKey(c.Vm.Display!.Vga!) && !HasPrimaryGpu(c);

    /// <summary>
    /// The qemu-xhci controller, always with every port it can have (15; each takes USB 2 and USB 3 devices), so each
    /// slot has a fixed port and a USB device can be hot-plugged into any VM that has the controller.
    /// </summary>
    internal static string XhciDevice() =>
        QemuOptions.Of("qemu-xhci").Add("id", "xhci").Add("addr", PciAddress(UsbSlot)).Add("p2", XhciPorts).Add("p3", XhciPorts).ToString();

    private static void Usb(Context c)
    {
        var devices = c.Vm.UsbDevices ?? [];
        if (devices.Count == 0)
            return;
        if (!XhciFromDisplay(c))
            c.Arg("-device", XhciDevice());
        foreach (var slot in devices.Keys.Order(SlotComparer))
            UsbDevice(c, slot, devices[slot]);
    }

    /// <summary>One USB slot's argv (a cold start and a hot-plug send the same): <c>usbN</c> at port N+2 (port 1 is the tablet's).</summary>
    private static void UsbDevice(Context c, string slot, UsbDeviceSpec usb)
    {
        // qemu-xhci pairs each USB 2 port with a USB 3 port of the same number: usb3 does not move the device.
        var port = ParseSlot(slot).Index + 2;
        QemuOptions.Builder device;
        if (usb.IsSpice())
        {
            c.Arg("-chardev", $"spicevmc,id={slot}-redir,name=usbredir");
            device = QemuOptions.Of("usb-redir").Add("id", slot).Add("chardev", slot + "-redir");
        }
        else if (usb.IsBusPort())
        {
            var dash = usb.Host!.IndexOf('-', StringComparison.Ordinal);
            device = QemuOptions.Of("usb-host").Add("id", slot).Add("hostbus", int.Parse(usb.Host[..dash], CultureInfo.InvariantCulture))
                .Add("hostport", usb.Host[(dash + 1)..]);
        }
        else
        {
            var (vendor, product) = UsbIds(usb.Host!);
            device = QemuOptions.Of("usb-host").Add("id", slot).Add("vendorid", "0x" + vendor).Add("productid", "0x" + product);
        }
        c.Arg("-device", device.Add("bus", "xhci.0").Add("port", port).ToString());
    }

    /// <summary><c>1234:ABCD</c> or <c>0x1234:0xabcd</c> → ("1234", "abcd").</summary>
    public static (string Vendor, string Product) UsbIds(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var parts = host.ToLowerInvariant().Replace("0x", "", StringComparison.Ordinal).Split(':');
        return (parts[0], parts[1]);
    }
}
