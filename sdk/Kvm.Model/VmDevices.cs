using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>The VM's further devices, Proxmox's <c>usbN</c>, <c>hostpciN</c>, <c>audio0</c>, <c>serialN</c>, <c>rng0</c>, <c>watchdog</c>, <c>virtiofsN</c> and <c>smbios1</c>.</summary>
public partial class VmSpec
{
    /// <summary>USB devices by slot.</summary>
    [Setting("USB devices by slot (`usb0` … `usb13`, Proxmox's `usbN`): a host device passed through by vendor:product or bus-port, " +
        "or a SPICE redirection channel. All sit on the VM's qemu-xhci controller, `usbN` at port N+2. A live add or remove also needs the " +
        "controller to be there already (a tablet or another USB device brings it); changing an entry waits for a restart.",
        KeyPattern = DevicePatterns.UsbSlot, KeyPatternText = "a slot name usb0–usb13", Hotplug = HotplugUsb)]
    public Dictionary<string, UsbDeviceSpec>? UsbDevices { get; set; }

    /// <summary>PCI passthrough by slot.</summary>
    [Setting("Host PCI(e) devices passed through with VFIO, by slot (`hostpci0` … `hostpci15`, Proxmox's `hostpciN`). The device's IOMMU group " +
        "must be bound to `vfio-pci` on the host; the agent checks this (and that the device exists) when the VM starts.",
        KeyPattern = DevicePatterns.PciSlot, KeyPatternText = "a slot name hostpci0–hostpci15")]
    public Dictionary<string, PciDeviceSpec>? PciDevices { get; set; }

    /// <summary>Audio.</summary>
    [Setting("An audio device (Proxmox's `audio0`). Unset: none.", NullMeansAbsent = true)]
    public AudioSpec? Audio { get; set; }

    /// <summary>Serial ports.</summary>
    [Setting("Serial ports by slot (`serial0` … `serial3`, Proxmox's `serialN`): `socket` (a unix socket in the VM's run directory, " +
        "`<run dir>/serialN.sock`) or a host serial device path such as `/dev/ttyS0`. `serial0` always exists and keeps feeding `serial_log`.",
        KeyPattern = DevicePatterns.SerialSlot, KeyPatternText = "a slot name serial0–serial3")]
    public Dictionary<string, SerialPortSpec>? SerialPorts { get; set; }

    /// <summary>RNG.</summary>
    [Setting("A virtio random number generator fed from a host entropy source (Proxmox's `rng0`). Unset: none.", NullMeansAbsent = true)]
    public RngSpec? Rng { get; set; }

    /// <summary>Watchdog.</summary>
    [Setting("A hardware watchdog and what happens when the guest stops feeding it (Proxmox's `watchdog`). Unset: none.", NullMeansAbsent = true)]
    public WatchdogSpec? Watchdog { get; set; }

    /// <summary>virtiofs shares.</summary>
    [Setting("Host directories shared with the guest over virtiofs, by slot (`virtiofs0` … `virtiofs9`, Proxmox's `virtiofsN`). The agent runs one " +
        "`virtiofsd` per share while the VM runs, and the VM's memory becomes shared (memfd). In the guest: `mount -t virtiofs <tag> /mnt`.",
        KeyPattern = DevicePatterns.VirtiofsSlot, KeyPatternText = "a slot name virtiofs0–virtiofs9")]
    public Dictionary<string, SharedDirSpec>? SharedDirs { get; set; }

    /// <summary>SMBIOS type 1.</summary>
    [Setting("SMBIOS type 1 (system information) fields the guest reads from its firmware tables (Proxmox's `smbios1`). Unset: QEMU's defaults.",
        NullMeansAbsent = true)]
    public SmbiosSpec? Smbios { get; set; }
}

/// <summary>Slot and value patterns of the devices.</summary>
public static class DevicePatterns
{
    /// <summary>USB slots.</summary>
    public const string UsbSlot = "usb([0-9]|1[0-3])";
    /// <summary>PCI passthrough slots.</summary>
    public const string PciSlot = "hostpci([0-9]|1[0-5])";
    /// <summary>Serial port slots.</summary>
    public const string SerialSlot = "serial[0-3]";
    /// <summary>virtiofs slots.</summary>
    public const string VirtiofsSlot = "virtiofs[0-9]";
    /// <summary>A USB device by vendor and product ID (hex).</summary>
    public const string UsbVendorProduct = "(0x)?[0-9A-Fa-f]{4}:(0x)?[0-9A-Fa-f]{4}";
    /// <summary>A USB device by bus and port path (Linux's <c>1-2.3</c>).</summary>
    public const string UsbBusPort = "[0-9]{1,3}-[0-9]{1,3}(\\.[0-9]{1,3}){0,6}";
    /// <summary>A PCI address: optional domain, bus, slot, optional function (without it: every function of the device).</summary>
    public const string PciAddress = "([0-9A-Fa-f]{4}:)?[0-9A-Fa-f]{2}:[0-1][0-9A-Fa-f](\\.[0-7])?";
    /// <summary>A 16-bit PCI ID in hex.</summary>
    public const string PciId = "0x[0-9A-Fa-f]{4}";
}

/// <summary>One USB device.</summary>
public sealed class UsbDeviceSpec : IValidatable
{
    /// <summary>Host device.</summary>
    [Setting("The host USB device, like Proxmox's `host=`: `vendor:product` in hex (`1234:5678`, any port), a bus-port path (`1-2.3`, whatever is plugged " +
        "in there), or `spice` (a SPICE USB redirection channel; needs `display.spice`). The agent checks that the device exists when the VM starts.",
        Required = true, Pattern = DevicePatterns.UsbVendorProduct + "|" + DevicePatterns.UsbBusPort + "|spice",
        PatternText = "vendor:product (hex), bus-port such as 1-2.3, or spice")]
    public string? Host { get; set; }

    /// <summary>USB 3.</summary>
    [Setting("Proxmox's `usb3`, accepted for compatibility: every port of the qemu-xhci controller takes USB 2 and USB 3 devices, so a SuperSpeed " +
        "device runs at its speed either way and the port does not change.", Default = false)]
    public bool? Usb3 { get; set; }

    /// <summary>Is a SPICE channel.</summary>
    public bool IsSpice() => Host == "spice";

    /// <summary>Is a bus-port selector.</summary>
    public bool IsBusPort() => Host is not null && Host.Contains('-', StringComparison.Ordinal);

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (Host == "0000:0000")
            context.Add(path.Attr("host"), "0000:0000 is not a device.");
    }
}

/// <summary>One PCI passthrough device.</summary>
public sealed class PciDeviceSpec
{
    /// <summary>Host address.</summary>
    [Setting("Host PCI address, like Proxmox's `host=`: `0000:01:00.0` (one function) or `01:00` (every function of the device, passed as one " +
        "multi-function device). The domain defaults to `0000`.", Required = true, Pattern = DevicePatterns.PciAddress,
        PatternText = "[domain:]bus:slot[.function] in hex, e.g. 0000:01:00.0 or 01:00")]
    public string? Address { get; set; }

    /// <summary>PCIe.</summary>
    [Setting("Attach as a PCI Express device behind its own root port (needs the q35 machine type), as GPUs and modern NICs expect.", Default = false)]
    public bool? Pcie { get; set; }

    /// <summary>ROM BAR.</summary>
    [Setting("Map the device's option ROM into guest memory.", Default = true)]
    public bool? Rombar { get; set; }

    /// <summary>ROM file.</summary>
    [Setting("Option ROM image to present instead of the device's own: an absolute host path, or a file name QEMU finds in its firmware directories " +
        "(`/usr/share/qemu`).", Pattern = "/[^\\u0000-\\u001f]*|[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", PatternText = "an absolute path or a file name", MaxLength = 4096)]
    public string? RomFile { get; set; }

    /// <summary>Primary GPU.</summary>
    [Setting("Make this device the VM's primary graphics card (Proxmox's `x-vga`): VGA is passed through and the VM gets no emulated display adapter or VNC.",
        Default = false)]
    public bool? PrimaryGpu { get; set; }

    /// <summary>Vendor ID override.</summary>
    [Setting("PCI vendor ID the guest sees instead of the device's own (`0x8086`).", Pattern = DevicePatterns.PciId, PatternText = "0x and four hex digits")]
    public string? VendorId { get; set; }

    /// <summary>Device ID override.</summary>
    [Setting("PCI device ID the guest sees instead of the device's own (`0x1234`).", Pattern = DevicePatterns.PciId, PatternText = "0x and four hex digits")]
    public string? DeviceId { get; set; }

    /// <summary>The address with its domain: <c>0000:01:00.0</c> or <c>0000:01:00</c>.</summary>
    public string FullAddress() => (Address!.Length is 5 or 7 ? "0000:" + Address : Address).ToLowerInvariant();

    /// <summary>Whether the address names every function of the device.</summary>
    public bool AllFunctions() => !Address!.Contains('.', StringComparison.Ordinal);
}

/// <summary>Audio device.</summary>
public sealed class AudioSpec
{
    /// <summary>Device.</summary>
    [Setting("Sound card: `ich9-intel-hda` (Intel HD Audio, recommended), `intel-hda` (older HDA) or `AC97`.", Default = "ich9-intel-hda",
        OneOf = ["ich9-intel-hda", "intel-hda", "AC97"])]
    public string? Device { get; set; }

    /// <summary>Backend.</summary>
    [Setting("Where the sound goes: `spice` (to the SPICE client; needs `display.spice`) or `none` (a silent card the guest can still use).",
        Default = "spice", OneOf = ["spice", "none"])]
    public string? Driver { get; set; }
}

/// <summary>One serial port.</summary>
public sealed class SerialPortSpec
{
    /// <summary>Type.</summary>
    [Setting("`socket` (a unix socket `<run dir>/serialN.sock` to attach a terminal to, e.g. `socat - UNIX-CONNECT:…`) or an absolute host serial device " +
        "path (`/dev/ttyS0`, `/dev/ttyUSB0`; checked when the VM starts).", Required = true,
        Pattern = "socket|/dev/[A-Za-z0-9._/-]{1,64}", PatternText = "socket or a /dev/ path")]
    public string? Type { get; set; }
}

/// <summary>RNG device.</summary>
public sealed class RngSpec
{
    /// <summary>Source.</summary>
    [Setting("Host entropy source: `/dev/urandom` (never blocks), `/dev/random` or `/dev/hwrng` (a host hardware RNG).", Default = "/dev/urandom",
        OneOf = ["/dev/urandom", "/dev/random", "/dev/hwrng"])]
    public string? Source { get; set; }

    /// <summary>Max bytes.</summary>
    [Setting("At most this many bytes of entropy per `period_ms` reach the guest; 0 means no limit.", Default = 1024, Min = 0, Max = 1_073_741_824)]
    public long? MaxBytes { get; set; }

    /// <summary>Period.</summary>
    [Setting("The period of `max_bytes`, in milliseconds.", Default = 1000, Min = 1, Max = 3_600_000)]
    public long? PeriodMs { get; set; }
}

/// <summary>Watchdog device.</summary>
public sealed class WatchdogSpec
{
    /// <summary>Model.</summary>
    [Setting("Watchdog model: `i6300esb` (PCI, Linux's i6300esb driver) or `ib700` (ISA, Linux's ib700wdt).", Default = "i6300esb",
        OneOf = ["i6300esb", "ib700"])]
    public string? Model { get; set; }

    /// <summary>Action.</summary>
    [Setting("What QEMU does when the watchdog fires: `reset`, `shutdown` (ACPI power button), `poweroff`, `pause`, `debug` (log only) or `none`. " +
        "Changed live (QMP `watchdog-set-action`).",
        Default = "reset", OneOf = ["reset", "shutdown", "poweroff", "pause", "debug", "none"], Update = UpdateKind.Live)]
    public string? Action { get; set; }
}

/// <summary>One virtiofs share.</summary>
public sealed class SharedDirSpec
{
    /// <summary>Host path.</summary>
    [Setting("Absolute path of the host directory to share; it must exist when the VM starts.", Required = true,
        Pattern = Patterns.AbsolutePath, PatternText = "an absolute path", MaxLength = 4096)]
    public string? Path { get; set; }

    /// <summary>Tag.</summary>
    [Setting("Mount tag the guest uses (`mount -t virtiofs <tag> /mnt`).", DefaultText = "the slot name (`virtiofs0`)",
        Pattern = "[A-Za-z0-9][A-Za-z0-9_.-]{0,35}", PatternText = "letters, digits, '_', '.', '-', at most 36 characters")]
    public string? Tag { get; set; }

    /// <summary>Read-only.</summary>
    [Setting("Share the directory read-only. Needs the Rust virtiofsd (Debian's `virtiofsd` package); QEMU's older C daemon cannot, and the start is refused.", Default = false)]
    public bool? ReadOnly { get; set; }

    /// <summary>Cache.</summary>
    [Setting("virtiofsd cache mode: `auto`, `always` or `never`.", Default = "auto", OneOf = ["auto", "always", "never"])]
    public string? Cache { get; set; }

    /// <summary>xattr.</summary>
    [Setting("Pass extended attributes through.", Default = false)]
    public bool? Xattr { get; set; }
}

/// <summary>SMBIOS type 1 fields.</summary>
public sealed class SmbiosSpec : IValidatable
{
    /// <summary>UUID.</summary>
    [Setting("System UUID.", Pattern = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}", PatternText = "a UUID")]
    public string? Uuid { get; set; }

    /// <summary>Manufacturer.</summary>
    [Setting("System manufacturer.", MaxLength = 512)]
    public string? Manufacturer { get; set; }

    /// <summary>Product.</summary>
    [Setting("Product name.", MaxLength = 512)]
    public string? Product { get; set; }

    /// <summary>Version.</summary>
    [Setting("Product version.", MaxLength = 512)]
    public string? Version { get; set; }

    /// <summary>Serial.</summary>
    [Setting("Serial number.", MaxLength = 512)]
    public string? Serial { get; set; }

    /// <summary>SKU.</summary>
    [Setting("SKU number.", MaxLength = 512)]
    public string? Sku { get; set; }

    /// <summary>Family.</summary>
    [Setting("Product family.", MaxLength = 512)]
    public string? Family { get; set; }

    /// <summary>Base64.</summary>
    [Setting("The text fields are base64-encoded (as Proxmox's `base64=1` stores them), so they can carry any bytes; the agent decodes them.", Default = false)]
    public bool? Base64 { get; set; }

    /// <summary>The text fields by their QEMU names.</summary>
    public IEnumerable<(string Name, string? Value)> TextFields() =>
        [("manufacturer", Manufacturer), ("product", Product), ("version", Version), ("serial", Serial), ("sku", Sku), ("family", Family)];

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        foreach (var (name, value) in TextFields())
        {
            if (value is null)
                continue;
            if (Base64 == true)
            {
                var buffer = new byte[value.Length];
                if (!Convert.TryFromBase64String(value, buffer, out var written))
                    context.Add(path.Attr(name), "is not valid base64 (base64 = true).");
                else if (buffer.AsSpan(0, written).IndexOfAnyInRange((byte)0, (byte)31) >= 0)
                    context.Add(path.Attr(name), "decodes to control characters, which SMBIOS strings cannot carry.");
            }
            else if (value.Any(char.IsControl))
            {
                context.Add(path.Attr(name), "contains control characters; SMBIOS strings cannot carry them.");
            }
        }
    }
}

/// <summary>Cross-field rules of the devices, called from <see cref="VmSpec.Validate"/>.</summary>
internal static class DeviceRules
{
    public static void Validate(VmSpec vm, ValidationContext context, AttrPath path)
    {
        var q35 = (vm.Machine ?? "q35").Contains("q35", StringComparison.Ordinal);
        var spice = vm.Display?.Spice == true;
        var pci = vm.PciDevices ?? [];
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (slot, device) in pci)
        {
            var at = path.Attr("pci_devices").Key(slot);
            if (device.Pcie == true && !q35)
                context.Add(at.Attr("pcie"), "PCI Express passthrough needs the q35 machine type.");
            if (device.Address is null || !Validator.Matches(DevicePatterns.PciAddress, device.Address))
                continue;
            var address = device.FullAddress();
            foreach (var (other, otherSlot) in seen)
            {
                if (other == address || other.StartsWith(address + ".", StringComparison.Ordinal) || address.StartsWith(other + ".", StringComparison.Ordinal))
                    context.Add(at.Attr("address"), $"{address} is also passed through by {otherSlot}.");
            }
            seen[address] = slot;
        }
        var gpus = pci.Where(p => p.Value.PrimaryGpu == true).Select(p => p.Key).Order(StringComparer.Ordinal).ToList();
        foreach (var extra in gpus.Skip(1))
            context.Add(path.Attr("pci_devices").Key(extra).Attr("primary_gpu"), $"only one device can be the primary GPU ({gpus[0]} is).");

        var usbSeen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (slot, usb) in vm.UsbDevices ?? [])
        {
            var at = path.Attr("usb_devices").Key(slot).Attr("host");
            if (usb.IsSpice())
            {
                if (!spice)
                    context.Add(at, "SPICE USB redirection needs display.spice = true.");
                continue;
            }
            if (usb.Host is null)
                continue;
            if (usbSeen.TryGetValue(usb.Host, out var other))
                context.Add(at, $"{usb.Host} is also passed through by {other}.");
            usbSeen[usb.Host] = slot;
        }

        if (vm.Audio is { } audio && (audio.Driver ?? "spice") == "spice" && !spice)
            context.Add(path.Attr("audio").Attr("driver"), "\"spice\" needs display.spice = true (or use \"none\").");

        var ports = vm.SerialPorts ?? [];
        var devices = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (slot, port) in ports)
        {
            if (port.Type is null or "socket")
                continue;
            if (port.Type.Contains("/../", StringComparison.Ordinal) || port.Type.EndsWith("/..", StringComparison.Ordinal))
                context.Add(path.Attr("serial_ports").Key(slot).Attr("type"), "must not contain '..'.");
            if (devices.TryGetValue(port.Type, out var other))
                context.Add(path.Attr("serial_ports").Key(slot).Attr("type"), $"{port.Type} is also used by {other}.");
            devices[port.Type] = slot;
        }
        if (vm.Agent is { Enabled: true, Type: "isa" } && ports.Keys.Union(["serial0"]).Distinct().Count() >= 4)
            context.Add(path.Attr("agent").Attr("type"), "an ISA guest agent channel needs a free ISA serial port, but serial0–serial3 are all used.");
        if (vm.Display?.Vga == "serial0" && ports.GetValueOrDefault("serial0") is { Type: not "socket" and not null })
            context.Add(path.Attr("serial_ports").Key("serial0").Attr("type"), "display.vga = \"serial0\" makes serial0 the console socket; it cannot be a host device.");

        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (slot, share) in vm.SharedDirs ?? [])
        {
            var tag = share.Tag ?? slot;
            if (tags.TryGetValue(tag, out var other))
                context.Add(path.Attr("shared_dirs").Key(slot).Attr("tag"), $"tag \"{tag}\" is also used by {other}.");
            tags[tag] = slot;
        }
    }
}
