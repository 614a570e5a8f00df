using System.Globalization;
using System.Text;
using Kvm.Model;

namespace Kvm.Agent.Qemu;

// Serial ports, audio, RNG, watchdog, SMBIOS and the SPICE server: devices that need nothing from the host
// beyond a file name, so their whole proof is the argv (and a real-QEMU test where QEMU runs them).
public static partial class QemuCommand
{
    /// <summary>Fixed PCI slots of the singletons this file adds (0x1b is where ICH9 puts its HD Audio).</summary>
    internal const int AudioSlot = 0x1b;
    internal const int RngSlot = 0x1e; // 0x1c holds the spare hot-plug root ports on q35
    internal const int WatchdogSlot = 0x1d;

    /// <summary>Unix socket of serial port <paramref name="slot"/> of type <c>socket</c> (<c>serial0</c>: the console socket).</summary>
    public static string SerialSocket(VmPaths paths, string slot)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return paths.RunDir.TrimEnd('/') + "/" + slot + ".sock";
    }

    /// <summary>Unix socket of the VM's SPICE server.</summary>
    public static string SpiceSocket(VmPaths paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return paths.RunDir.TrimEnd('/') + "/spice.sock";
    }

    /// <summary>
    /// The serial ports. serial0 always exists and always feeds the serial log (QEMU's chardev <c>logfile</c> when
    /// it is a socket or a host device); serial1–3 exist when <c>serial_ports</c> names them, at fixed ISA indexes.
    /// </summary>
    private static void SerialPorts(Context c)
    {
        var ports = c.Vm.SerialPorts ?? [];
        var log = c.File(c.Paths.SerialLog, Attr("serial_log"), "serial log");
        var first = ports.GetValueOrDefault("serial0")?.Type ?? (c.Vm.Display!.Vga == "serial0" ? "socket" : null);
        var chardev = first switch
        {
            null => QemuOptions.Of("file").Add("id", "serial0").Add("path", log),
            _ => SerialChardev(c, "serial0", first).Add("logfile", log),
        };
        c.Arg("-chardev", chardev.ToString());
        c.Arg("-device", "isa-serial,chardev=serial0,id=serial0");
        foreach (var slot in ports.Keys.Where(k => k != "serial0").Order(SlotComparer))
        {
            c.Arg("-chardev", SerialChardev(c, slot, ports[slot].Type!).ToString());
            c.Arg("-device", $"isa-serial,chardev={slot},id={slot},index={ParseSlot(slot).Index}");
        }
    }

    private static QemuOptions.Builder SerialChardev(Context c, string slot, string type)
    {
        if (type == "socket")
        {
            var socket = c.File(SerialSocket(c.Paths, slot), Attr("vm_id"), $"{slot} socket");
            CheckSocketPath(c, socket, $"{slot} socket");
            return QemuOptions.Of("socket").Add("id", slot).Add("path", socket).Add("server", true).Add("wait", false);
        }
        var device = c.File(type, Attr("serial_ports").Key(slot).Attr("type"), "serial device");
        return QemuOptions.Of("serial").Add("id", slot).Add("path", device);
    }

    /// <summary>
    /// The ISA index of an ISA guest agent channel: empty (QEMU's next index, COM2) when serial0 is the only port,
    /// otherwise the first index no serial port uses (QEMU counts devices, not free indexes).
    /// </summary>
    internal static string IsaAgentIndex(Context c)
    {
        var ports = c.Vm.SerialPorts ?? [];
        if (ports.Keys.All(k => k == "serial0"))
            return "";
        var free = Enumerable.Range(1, 3).First(i => !ports.ContainsKey("serial" + i.ToString(CultureInfo.InvariantCulture)));
        return ",index=" + free.ToString(CultureInfo.InvariantCulture);
    }

    private static void Devices(Context c)
    {
        Spice(c);
        Audio(c);
        Rng(c);
        Watchdog(c);
        Smbios(c);
        Usb(c);
    }

    private static void Spice(Context c)
    {
        if (c.Vm.Display!.Spice != true)
            return;
        var socket = c.File(SpiceSocket(c.Paths), Attr("vm_id"), "SPICE socket");
        CheckSocketPath(c, socket, "SPICE socket");
        // A unix socket in the run directory: reachable by whoever may read the run directory, nothing on the network.
        c.Arg("-spice", QemuOptions.Of("unix=on").Add("addr", socket).Add("disable-ticketing", true).ToString());
    }

    private static void Audio(Context c)
    {
        if (c.Vm.Audio is not { } audio)
            return;
        c.Arg("-audiodev", $"{audio.Driver},id=audio0");
        if (audio.Device == "AC97")
        {
            c.Arg("-device", $"AC97,id=audio0,addr={PciAddress(AudioSlot)},audiodev=audio0");
            return;
        }
        c.Arg("-device", $"{audio.Device},id=audio0,addr={PciAddress(AudioSlot)}");
        c.Arg("-device", "hda-duplex,id=audio0-codec0,bus=audio0.0,cad=0,audiodev=audio0");
    }

    private static void Rng(Context c)
    {
        if (c.Vm.Rng is not { } rng)
            return;
        c.Arg("-object", QemuOptions.Of("rng-random").Add("id", "rng0").Add("filename", rng.Source!).ToString());
        var device = QemuOptions.Of("virtio-rng-pci").Add("rng", "rng0").Add("id", "rng0");
        if (rng.MaxBytes > 0)
            device.Add("max-bytes", rng.MaxBytes.Value).Add("period", rng.PeriodMs!.Value);
        c.Arg("-device", device.Add("addr", PciAddress(RngSlot)).ToString());
    }

    private static void Watchdog(Context c)
    {
        if (c.Vm.Watchdog is not { } watchdog)
            return;
        c.Arg("-device", watchdog.Model == "ib700" ? "ib700,id=watchdog0" : $"i6300esb,id=watchdog0,addr={PciAddress(WatchdogSlot)}");
        c.Arg("-action", "watchdog=" + watchdog.Action);
    }

    private static void Smbios(Context c)
    {
        if (c.Vm.Smbios is not { } smbios)
            return;
        var options = QemuOptions.Of("type=1").AddIf("uuid", smbios.Uuid?.ToLowerInvariant());
        foreach (var (name, value) in smbios.TextFields())
        {
            if (value is null)
                continue;
            var text = smbios.Base64 == true ? Encoding.UTF8.GetString(Convert.FromBase64String(value)) : value;
            options.Add(name, c.Safe(text, Attr("smbios").Attr(name)));
        }
        if (options.ToString() != "type=1")
            c.Arg("-smbios", options.ToString());
    }
}
