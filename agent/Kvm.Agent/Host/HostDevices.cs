using System.Globalization;
using System.Text.RegularExpressions;
using Kvm.Agent.Qemu;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Host;

/// <summary>
/// The host's PCI and USB devices, read from sysfs each time they are asked for (devices come and go), and the
/// checks a VM's passthrough devices must pass when it starts: the device exists, its IOMMU group is bound to vfio-pci.
/// </summary>
public static partial class HostDevices
{
    /// <summary>The sysfs mount the agent reads.</summary>
    public const string SysRoot = "/sys";

    [GeneratedRegex("^[0-9]+-[0-9]+(\\.[0-9]+)*$")]
    private static partial Regex UsbDeviceName();

    /// <summary>Every PCI function and USB device under <paramref name="sysRoot"/>, sorted by address.</summary>
    public static HostDeviceInventory Read(string sysRoot = SysRoot) => new()
    {
        PciDevices = ReadPci(sysRoot),
        UsbDevices = ReadUsb(sysRoot),
    };

    private static List<HostPciDevice> ReadPci(string sysRoot)
    {
        var dir = Path.Join(sysRoot, "bus", "pci", "devices");
        if (!Directory.Exists(dir))
            return [];
        var devices = new List<HostPciDevice>();
        foreach (var path in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
        {
            devices.Add(new HostPciDevice
            {
                Address = Path.GetFileName(path),
                VendorId = ReadText(path, "vendor"),
                DeviceId = ReadText(path, "device"),
                SubsystemVendorId = ReadText(path, "subsystem_vendor"),
                SubsystemDeviceId = ReadText(path, "subsystem_device"),
                Class = ReadText(path, "class"),
                Driver = LinkName(Path.Join(path, "driver")),
                IommuGroup = LinkName(Path.Join(path, "iommu_group")) is { } group && long.TryParse(group, CultureInfo.InvariantCulture, out var n) ? n : null,
            });
        }
        return devices;
    }

    private static List<HostUsbDevice> ReadUsb(string sysRoot)
    {
        var dir = Path.Join(sysRoot, "bus", "usb", "devices");
        if (!Directory.Exists(dir))
            return [];
        var devices = new List<HostUsbDevice>();
        foreach (var path in Directory.EnumerateFileSystemEntries(dir).Where(p => UsbDeviceName().IsMatch(Path.GetFileName(p))).Order(StringComparer.Ordinal))
        {
            var vendor = ReadText(path, "idVendor");
            var product = ReadText(path, "idProduct");
            devices.Add(new HostUsbDevice
            {
                BusPort = Path.GetFileName(path),
                VendorProduct = vendor is null || product is null ? null : $"{vendor}:{product}".ToLowerInvariant(),
                Manufacturer = ReadText(path, "manufacturer"),
                Product = ReadText(path, "product"),
                Serial = ReadText(path, "serial"),
                SpeedMbps = double.TryParse(ReadText(path, "speed"), CultureInfo.InvariantCulture, out var speed) ? (long)speed : null,
                Class = ReadText(path, "bDeviceClass"),
            });
        }
        return devices;
    }

    private static string? ReadText(string dir, string file)
    {
        try
        {
            var text = File.ReadAllText(Path.Join(dir, file)).Trim();
            return text.Length == 0 ? null : text;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string? LinkName(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget is { } target ? Path.GetFileName(target) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The host functions a whole-device address (<c>01:00</c>) stands for, function 0 first.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Functions(VmSpec spec, HostDeviceInventory inventory)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(inventory);
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (slot, pci) in spec.PciDevices ?? [])
            if (pci.Address is not null && pci.AllFunctions())
                result[slot] = FunctionsOf(pci.FullAddress(), inventory);
        return result;
    }

    private static List<string> FunctionsOf(string device, HostDeviceInventory inventory) =>
        [.. (inventory.PciDevices ?? []).Select(d => d.Address!).Where(a => a.StartsWith(device + ".", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    /// <summary>
    /// What keeps the VM's host devices from working here, by attribute: missing PCI or USB devices, PCI devices whose
    /// IOMMU group is not bound to vfio-pci, missing serial devices, ROM files, shared directories and entropy sources.
    /// </summary>
    public static IReadOnlyList<ProblemError> Check(VmSpec spec, HostDeviceInventory inventory, string sysRoot = SysRoot)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(inventory);
        var errors = new List<ProblemError>();
        void Add(AttrPath path, string detail) => errors.Add(new ProblemError(path.ToString(), detail));
        var root = AttrPath.Root;
        var pciByAddress = (inventory.PciDevices ?? []).ToDictionary(d => d.Address!, StringComparer.Ordinal);

        foreach (var (slot, pci) in spec.PciDevices ?? [])
        {
            if (pci.Address is null)
                continue;
            var at = root.Attr("pci_devices").Key(slot);
            var address = pci.FullAddress();
            var functions = pci.AllFunctions() ? FunctionsOf(address, inventory) : pciByAddress.ContainsKey(address) ? [address] : [];
            if (functions.Count == 0)
            {
                Add(at.Attr("address"), $"there is no PCI device {address} on this host (see kvm_host.pci_devices).");
                continue;
            }
            foreach (var function in functions)
            {
                if (pciByAddress[function].IommuGroup is not { } group)
                {
                    Add(at.Attr("address"), $"{function} has no IOMMU group: the host's IOMMU is off (boot it with intel_iommu=on or amd_iommu=on), so it cannot be passed through.");
                    break;
                }
                var unbound = GroupMembers(sysRoot, group)
                    .Select(member => pciByAddress.GetValueOrDefault(member))
                    .OfType<HostPciDevice>()
                    .Where(d => d.Driver != "vfio-pci" && !(d.Class ?? "").StartsWith("0x0604", StringComparison.Ordinal)) // PCI bridges stay with the host
                    .ToList();
                if (unbound.Count > 0)
                {
                    Add(at.Attr("address"), $"IOMMU group {group} of {function} is not bound to vfio-pci: " +
                        string.Join(", ", unbound.Select(d => $"{d.Address} uses {d.Driver ?? "no driver"}")) + ". Bind every device of the group to vfio-pci first.");
                    break;
                }
            }
            if (pci.RomFile is { } rom && rom.StartsWith('/') && !File.Exists(rom))
                Add(at.Attr("rom_file"), $"{rom} does not exist on this host.");
        }

        var usb = inventory.UsbDevices ?? [];
        foreach (var (slot, device) in spec.UsbDevices ?? [])
        {
            if (device.Host is null || device.IsSpice())
                continue;
            var at = root.Attr("usb_devices").Key(slot).Attr("host");
            if (device.IsBusPort())
            {
                if (!usb.Any(u => u.BusPort == device.Host))
                    Add(at, $"there is no USB device at bus-port {device.Host} on this host (see kvm_host.usb_devices).");
            }
            else
            {
                var (vendor, product) = QemuCommand.UsbIds(device.Host);
                if (!usb.Any(u => u.VendorProduct == $"{vendor}:{product}"))
                    Add(at, $"there is no USB device {vendor}:{product} on this host (see kvm_host.usb_devices).");
            }
        }

        foreach (var (slot, port) in spec.SerialPorts ?? [])
        {
            if (port.Type is null or "socket")
                continue;
            if (!Posix.IsCharacterDevice(port.Type))
                Add(root.Attr("serial_ports").Key(slot).Attr("type"), $"{port.Type} is not a character device on this host.");
        }
        foreach (var (slot, share) in spec.SharedDirs ?? [])
        {
            if (share.Path is not null && !Directory.Exists(share.Path))
                Add(root.Attr("shared_dirs").Key(slot).Attr("path"), $"the directory {share.Path} does not exist on this host.");
        }
        if (spec.Rng?.Source is { } source && !File.Exists(source))
            Add(root.Attr("rng").Attr("source"), $"{source} does not exist on this host.");
        return errors;
    }

    private static IEnumerable<string> GroupMembers(string sysRoot, long group)
    {
        var dir = Path.Join(sysRoot, "kernel", "iommu_groups", group.ToString(CultureInfo.InvariantCulture), "devices");
        return Directory.Exists(dir) ? Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).OfType<string>() : [];
    }
}
