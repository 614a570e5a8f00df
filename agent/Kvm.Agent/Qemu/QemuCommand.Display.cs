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

        SerialPorts(c);

        c.Arg("-display", "none");
        if (!VgaDevices.TryGetValue(vga, out var adapter) || HasPrimaryGpu(c))
            return; // no adapter (or a passed-through primary GPU): nothing for VNC to show and no pointer for a tablet to move
        var device = QemuOptions.Of(adapter).Add("id", "vga").Add("addr", PciAddress(VgaSlot));
        if (display.MemoryMib is { } mib && VgaWithMemory.Contains(vga, StringComparer.Ordinal))
            device.Add("vgamem_mb", mib);
        c.Arg("-device", device.ToString());
        if (display.Vnc == true)
            c.Arg("-vnc", VncListen);
        if (c.Vm.Tablet == true)
        {
            c.Arg("-device", XhciDevice());
            c.Arg("-device", "usb-tablet,id=tablet,bus=xhci.0");
        }
    }
}
