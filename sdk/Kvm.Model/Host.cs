using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>What a host offers, probed once when the agent starts.</summary>
[Resource("host", "Facts about a hypervisor host: QEMU version, KVM, firmware, machine types, CPU models, capacity, and its PCI and USB devices.")]
public sealed partial class HostInfo
{
    /// <summary>Host name.</summary>
    [Setting("Host name of the machine the agent runs on.", ReadOnly = true)]
    public string? Hostname { get; set; }

    /// <summary>Agent version.</summary>
    [Setting("Version of kvm-agent.", ReadOnly = true)]
    public string? AgentVersion { get; set; }

    /// <summary>QEMU version.</summary>
    [Setting("Version of qemu-system-x86_64.", ReadOnly = true)]
    public string? QemuVersion { get; set; }

    /// <summary>/dev/kvm exists.</summary>
    [Setting("Whether /dev/kvm exists.", ReadOnly = true)]
    public bool? KvmPresent { get; set; }

    /// <summary>KVM usable.</summary>
    [Setting("Whether a probe VM ran guest code under KVM at a useful speed (false on some nested hosts).", ReadOnly = true)]
    public bool? KvmUsable { get; set; }

    /// <summary>Default accelerator.</summary>
    [Setting("Accelerator VMs get when they do not set `kvm`: `kvm` or `tcg`.", ReadOnly = true)]
    public string? DefaultAccelerator { get; set; }

    /// <summary>CPU count.</summary>
    [Setting("Logical CPUs of the host. A VM with more vCPUs does not start.", ReadOnly = true)]
    public int? CpuCores { get; set; }

    /// <summary>Memory.</summary>
    [Setting("Host memory in MiB. VMs may use all but 1 GiB of it.", ReadOnly = true)]
    public long? MemoryMib { get; set; }

    /// <summary>Machine types.</summary>
    [Setting("Machine types QEMU offers.", ReadOnly = true)]
    public List<string>? MachineTypes { get; set; }

    /// <summary>CPU models.</summary>
    [Setting("CPU models QEMU offers, plus the Proxmox x86-64-vN models.", ReadOnly = true)]
    public List<string>? CpuModels { get; set; }

    /// <summary>Firmware types.</summary>
    [Setting("Firmware types available: `bios`, and `uefi` when OVMF is installed.", ReadOnly = true)]
    public List<string>? FirmwareTypes { get; set; }

    /// <summary>EFI templates.</summary>
    [Setting("EFI variable store templates available (`2m`, `4m`).", ReadOnly = true)]
    public List<string>? EfiVarsTemplates { get; set; }

    /// <summary>Secure boot.</summary>
    [Setting("Whether secure-boot OVMF with pre-enrolled keys is installed.", ReadOnly = true)]
    public bool? SecureBootAvailable { get; set; }

    /// <summary>Pools.</summary>
    [Setting("Names of the host's storage pools.", ReadOnly = true)]
    public List<string>? StoragePools { get; set; }

    /// <summary>PCI devices.</summary>
    [Setting("The host's PCI functions with IDs, class, driver and IOMMU group (the candidates for a VM's `pci_devices`).", ReadOnly = true)]
    public List<HostPciDevice>? PciDevices { get; set; }

    /// <summary>USB devices.</summary>
    [Setting("The host's USB devices with bus-port, vendor:product and names (the candidates for a VM's `usb_devices`).", ReadOnly = true)]
    public List<HostUsbDevice>? UsbDevices { get; set; }
}
