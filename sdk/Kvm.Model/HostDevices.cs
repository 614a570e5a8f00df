using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>The host's PCI and USB devices, read from sysfs when asked (<c>GET /v1/host/devices</c>, <c>kvm_host</c>).</summary>
public sealed class HostDeviceInventory
{
    /// <summary>PCI devices.</summary>
    [Setting("The host's PCI functions (/sys/bus/pci/devices), candidates for `pci_devices`.", ReadOnly = true)]
    public List<HostPciDevice>? PciDevices { get; set; }

    /// <summary>USB devices.</summary>
    [Setting("The host's USB devices (/sys/bus/usb/devices, hubs included), candidates for `usb_devices`.", ReadOnly = true)]
    public List<HostUsbDevice>? UsbDevices { get; set; }
}

/// <summary>One host PCI function.</summary>
public sealed class HostPciDevice
{
    /// <summary>Address.</summary>
    [Setting("PCI address with domain (`0000:01:00.0`); use it as `pci_devices.*.address`.", ReadOnly = true)]
    public string? Address { get; set; }

    /// <summary>Vendor ID.</summary>
    [Setting("Vendor ID (`0x8086`).", ReadOnly = true)]
    public string? VendorId { get; set; }

    /// <summary>Device ID.</summary>
    [Setting("Device ID (`0x1533`).", ReadOnly = true)]
    public string? DeviceId { get; set; }

    /// <summary>Subsystem vendor.</summary>
    [Setting("Subsystem vendor ID.", ReadOnly = true)]
    public string? SubsystemVendorId { get; set; }

    /// <summary>Subsystem device.</summary>
    [Setting("Subsystem device ID.", ReadOnly = true)]
    public string? SubsystemDeviceId { get; set; }

    /// <summary>Class.</summary>
    [Setting("PCI class code (`0x030000` is a VGA controller).", ReadOnly = true)]
    public string? Class { get; set; }

    /// <summary>Driver.</summary>
    [Setting("Host driver bound to it (`vfio-pci` when it is ready for passthrough); unset when none is.", ReadOnly = true)]
    public string? Driver { get; set; }

    /// <summary>IOMMU group.</summary>
    [Setting("IOMMU group number; unset when the host's IOMMU is off (then nothing can be passed through).", ReadOnly = true)]
    public long? IommuGroup { get; set; }
}

/// <summary>One host USB device.</summary>
public sealed class HostUsbDevice
{
    /// <summary>Bus-port.</summary>
    [Setting("Bus and port path (`1-2.3`); use it as `usb_devices.*.host` to pass whatever is plugged in there.", ReadOnly = true)]
    public string? BusPort { get; set; }

    /// <summary>Vendor:product.</summary>
    [Setting("`vendor:product` in hex (`046d:c52b`); use it as `usb_devices.*.host` to pass this device on any port.", ReadOnly = true)]
    public string? VendorProduct { get; set; }

    /// <summary>Manufacturer.</summary>
    [Setting("Manufacturer string the device reports.", ReadOnly = true)]
    public string? Manufacturer { get; set; }

    /// <summary>Product.</summary>
    [Setting("Product string the device reports.", ReadOnly = true)]
    public string? Product { get; set; }

    /// <summary>Serial.</summary>
    [Setting("Serial number string the device reports.", ReadOnly = true)]
    public string? Serial { get; set; }

    /// <summary>Speed.</summary>
    [Setting("Link speed in Mbit/s (480: USB 2, 5000 and up: USB 3).", ReadOnly = true)]
    public long? SpeedMbps { get; set; }

    /// <summary>Class.</summary>
    [Setting("USB device class (`09` is a hub).", ReadOnly = true)]
    public string? Class { get; set; }
}
