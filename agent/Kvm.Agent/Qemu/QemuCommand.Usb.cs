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

    /// <summary>The qemu-xhci controller; with USB devices, every port it can have, so each slot gets a fixed port.</summary>
    internal static string XhciDevice(Context c)
    {
        var device = QemuOptions.Of("qemu-xhci").Add("id", "xhci").Add("addr", PciAddress(UsbSlot));
        if (c.Vm.UsbDevices is { Count: > 0 })
            device.Add("p2", XhciPorts).Add("p3", XhciPorts);
        return device.ToString();
    }

    private static void Usb(Context c)
    {
        var devices = c.Vm.UsbDevices ?? [];
        if (devices.Count == 0)
            return;
        if (!XhciFromDisplay(c))
            c.Arg("-device", XhciDevice(c));
        foreach (var slot in devices.Keys.Order(SlotComparer))
        {
            var usb = devices[slot];
            var index = ParseSlot(slot).Index;
            // Port 1 is the tablet's; usbN takes USB 2 port N+2, or USB 3 port N+1 after the USB 2 ports.
            var port = usb.Usb3 == true ? XhciPorts + 1 + index : index + 2;
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
    }

    /// <summary><c>1234:ABCD</c> or <c>0x1234:0xabcd</c> → ("1234", "abcd").</summary>
    public static (string Vendor, string Product) UsbIds(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var parts = host.ToLowerInvariant().Replace("0x", "", StringComparison.Ordinal).Split(':');
        return (parts[0], parts[1]);
    }
}
