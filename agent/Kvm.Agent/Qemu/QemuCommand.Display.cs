namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    private static readonly IReadOnlyDictionary<string, string> VgaDevices = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["std"] = "VGA",
        ["cirrus"] = "cirrus-vga",
        ["vmware"] = "vmware-svga",
        ["qxl"] = "qxl-vga",
        ["virtio"] = "virtio-vga",
    };

    private static readonly string[] VgaWithMemory = ["std", "vmware", "qxl"];

    /// <summary>The VNC listener: loopback only, first free display from :0 (port 5900) up to port 65535; query-vnc tells which.</summary>
    public const string VncListen = "127.0.0.1:0,to=59635";

    /// <summary>Unix socket of the interactive serial console of a <c>serial0</c> VM (its output also goes to the serial log).</summary>
    public static string SerialConsoleSocket(VmPaths paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return paths.RunDir.TrimEnd('/') + "/serial0.sock";
    }

    private static void Display(Context c)
    {
        var display = c.Vm.Display!;
        var at = Attr("display");
        var vga = display.Vga!;
        if (c.User.Display?.MemoryMib is not null && !VgaWithMemory.Contains(vga, StringComparer.Ordinal))
            c.Error(at.Attr("memory_mib"), $"video memory applies to the std, vmware and qxl adapters, not \"{vga}\".");

        var log = c.File(c.Paths.SerialLog, Attr("serial_log"), "serial log");
        if (vga == "serial0")
        {
            // The serial port is the console: a socket to attach to, still logged to the serial log.
            var socket = c.File(SerialConsoleSocket(c.Paths), Attr("vm_id"), "serial console socket");
            CheckSocketPath(c, socket, "serial console socket");
            c.Arg("-chardev", QemuOptions.Of("socket").Add("id", "serial0").Add("path", socket).Add("server", true).Add("wait", false)
                .Add("logfile", log).ToString());
        }
        else
        {
            c.Arg("-chardev", QemuOptions.Of("file").Add("id", "serial0").Add("path", log).ToString());
        }
        c.Arg("-device", "isa-serial,chardev=serial0,id=serial0");

        c.Arg("-display", "none");
        if (!VgaDevices.TryGetValue(vga, out var adapter))
            return; // no adapter: nothing for VNC to show and no pointer for a tablet to move
        var device = QemuOptions.Of(adapter).Add("id", "vga").Add("addr", PciAddress(VgaSlot));
        if (display.MemoryMib is { } mib && VgaWithMemory.Contains(vga, StringComparer.Ordinal))
            device.Add("vgamem_mb", mib);
        c.Arg("-device", device.ToString());
        if (display.Vnc == true)
            c.Arg("-vnc", VncListen);
        if (c.Vm.Tablet == true)
        {
            c.Arg("-device", $"qemu-xhci,id=xhci,addr={PciAddress(UsbSlot)}");
            c.Arg("-device", "usb-tablet,id=tablet,bus=xhci.0");
        }
    }
}
