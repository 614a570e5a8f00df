using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>Firmware choice.</summary>
public sealed class FirmwareSpec
{
    /// <summary>bios or uefi.</summary>
    [Setting("`bios` (SeaBIOS) or `uefi` (OVMF with a per-VM EFI variable store, the efidisk).", Default = "bios", OneOf = ["bios", "uefi"])]
    public string? Type { get; set; }

    /// <summary>Secure boot.</summary>
    [Setting("UEFI Secure Boot: the secure-boot OVMF build with SMM, and Microsoft keys pre-enrolled in the variable store.", Default = false)]
    public bool? SecureBoot { get; set; }

    /// <summary>EFI vars store.</summary>
    [Setting("The EFI variable store (efidisk) made for the VM from an OVMF template when it is first started.")]
    public EfiVarsSpec? EfiVars { get; set; }
}

/// <summary>EFI variable store options.</summary>
public sealed class EfiVarsSpec
{
    /// <summary>2m or 4m.</summary>
    [Setting("OVMF flash size: `4m` (current) or `2m` (legacy). Changing it needs a new variable store, so the VM is re-created.",
        Default = "4m", OneOf = ["2m", "4m"], Update = UpdateKind.Replace)]
    public string? Template { get; set; }

    /// <summary>Pre-enrolled keys.</summary>
    [Setting("Start from a variable store with the distribution's and Microsoft's Secure Boot keys enrolled.",
        DefaultText = "the value of `secure_boot`", Update = UpdateKind.Replace)]
    public bool? PreEnrolledKeys { get; set; }
}

/// <summary>CPU topology and model.</summary>
public sealed partial class CpuSpec
{
    /// <summary>Sockets.</summary>
    [Setting("Number of CPU sockets.", Default = 1, Min = 1, Max = 16)]
    public int? Sockets { get; set; }

    /// <summary>Cores per socket.</summary>
    [Setting("Number of cores per socket.", Default = 1, Min = 1, Max = 256)]
    public int? Cores { get; set; }

    /// <summary>Threads per core.</summary>
    [Setting("Number of threads per core.", Default = 1, Min = 1, Max = 8)]
    public int? Threads { get; set; }

    /// <summary>Model.</summary>
    [Setting("CPU model: `host` (pass through, KVM only), `max`, `kvm64`, `qemu64`, Proxmox's `x86-64-v2`, `x86-64-v2-AES`, `x86-64-v3`, `x86-64-v4`, or any model QEMU lists (see `kvm_host.cpu_models`).",
        Default = "x86-64-v2-AES", Pattern = "[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", PatternText = "a CPU model name")]
    public string? Model { get; set; }

    /// <summary>Flags.</summary>
    [Setting("Extra CPU flags, each `+flag` or `-flag` (e.g. `+aes`, `-hypervisor`).", Set = true,
        Pattern = "[+-][a-z0-9_.-]{1,64}", PatternText = "+flag or -flag")]
    public List<string>? Flags { get; set; }
}

/// <summary>Memory size and ballooning.</summary>
public sealed partial class MemorySpec
{
    /// <summary>Size.</summary>
    [Setting("Memory in MiB. Grows live (a DIMM is plugged) up to `hotplug_max_mib` when that is set; a shrink, or any other change, applies at the next start.",
        Default = 512, Min = 16, Max = 4_194_304, Update = UpdateKind.Live, Hotplug = VmSpec.HotplugMemory)]
    public long? SizeMib { get; set; }

    /// <summary>Balloon.</summary>
    [Setting("The virtio balloon device.")]
    public BalloonSpec? Balloon { get; set; }
}

/// <summary>Balloon device.</summary>
public sealed class BalloonSpec
{
    /// <summary>Present.</summary>
    [Setting("Add the virtio balloon device (also reports guest memory statistics).", Default = true)]
    public bool? Enabled { get; set; }

    /// <summary>Target.</summary>
    [Setting("Balloon target in MiB: the guest is asked to give memory back down to this size. Applied live.",
        DefaultText = "`memory.size_mib` (no ballooning)", Min = 16, Update = UpdateKind.Live)]
    public long? MinMib { get; set; }
}

/// <summary>One disk.</summary>
public sealed partial class DiskSpec : IValidatable
{
    /// <summary>Standalone volume.</summary>
    [Setting("A standalone volume (`<pool>/<name>`) to attach; it survives the VM. Leave unset for an inline disk.",
        Pattern = Patterns.VolumeId, PatternText = Patterns.VolumeIdText)]
    public string? VolumeId { get; set; }

    /// <summary>Base image.</summary>
    [Setting("Image (`<pool>/<name>` of a `kvm_image`) the inline disk starts from, as a full copy or a linked clone. Create-only.",
        Pattern = Patterns.VolumeId, PatternText = Patterns.ImageIdText, Update = UpdateKind.Replace)]
    public string? ImageId { get; set; }

    /// <summary>Linked clone.</summary>
    [Setting("Make the disk a qcow2 overlay on `image_id` (fast, thin; the image cannot be deleted while it exists) instead of a full copy.",
        Default = false, Update = UpdateKind.Replace)]
    public bool? LinkedClone { get; set; }

    /// <summary>Size.</summary>
    [Setting("Size of an inline disk in GiB. With `image_id` it defaults to the image's virtual size and may only be larger. Growing applies live; shrinking is refused.",
        Min = 1, Max = 65536, Update = UpdateKind.Live)]
    public long? SizeGib { get; set; }

    /// <summary>Format.</summary>
    [Setting("Image format of an inline disk: `qcow2`, `raw` or `vmdk`. In an `lvm-thin` pool the disk is a raw thin logical volume: set `raw` there.", Default = "qcow2", OneOf = ["qcow2", "raw", "vmdk"], Update = UpdateKind.Replace)]
    public string? Format { get; set; }

    /// <summary>Pool.</summary>
    [Setting("Storage pool of an inline disk.", Default = "default", Pattern = Patterns.PoolName, PatternText = Patterns.PoolNameText, Update = UpdateKind.Replace)]
    public string? Pool { get; set; }

    /// <summary>Preallocation.</summary>
    [Setting("Preallocation of an inline disk: `off`, `metadata` (qcow2), `falloc` or `full`.", Default = "off",
        OneOf = ["off", "metadata", "falloc", "full"], Update = UpdateKind.Replace)]
    public string? Preallocation { get; set; }

    /// <summary>Cache mode.</summary>
    [Setting("Cache mode: `none`, `writeback`, `writethrough`, `directsync` or `unsafe`.", Default = "none",
        OneOf = ["none", "writeback", "writethrough", "directsync", "unsafe"])]
    public string? Cache { get; set; }

    /// <summary>AIO.</summary>
    [Setting("Asynchronous I/O: `io_uring`, `native` (needs cache `none` or `directsync`) or `threads`.", Default = "io_uring",
        OneOf = ["io_uring", "native", "threads"])]
    public string? Aio { get; set; }

    /// <summary>Discard.</summary>
    [Setting("Pass discard/TRIM requests to the image so freed space returns to the pool.", Default = false)]
    public bool? Discard { get; set; }

    /// <summary>SSD emulation.</summary>
    [Setting("Present the disk as an SSD (rotation rate 1). Not on virtio disks.", Default = false)]
    public bool? Ssd { get; set; }

    /// <summary>IO thread.</summary>
    [Setting("Run the disk's I/O in its own iothread (virtio disks, and scsi disks on `virtio-scsi-single`).", Default = false)]
    public bool? Iothread { get; set; }

    /// <summary>Serial.</summary>
    [Setting("Disk serial number the guest sees (`/dev/disk/by-id`).", Pattern = "[A-Za-z0-9_-]{1,20}", PatternText = "1–20 letters, digits, '_' or '-'")]
    public string? Serial { get; set; }

    /// <summary>Read-only.</summary>
    [Setting("Attach the disk read-only.", Default = false)]
    public bool? ReadOnly { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (VolumeId is null && SizeGib is null && ImageId is null && HostDevice is null)
            context.Add(path.Attr("size_gib"), "is required for an inline disk (or set `volume_id`, `image_id` or `host_device`).");
        if (VolumeId is not null && ImageId is not null)
            context.Add(path.Attr("image_id"), "a disk is either a volume (`volume_id`) or made from an image (`image_id`), not both.");
        if (LinkedClone == true && ImageId is null)
            context.Add(path.Attr("linked_clone"), "needs `image_id`.");
        if (LinkedClone == true && Format is not (null or "qcow2"))
            context.Add(path.Attr("linked_clone"), "a linked clone is a qcow2 overlay: needs format \"qcow2\".");
        if (VolumeId is not null)
        {
            foreach (var (name, set) in new[] { ("size_gib", SizeGib is not null), ("format", Format is not null), ("pool", Pool is not null), ("preallocation", Preallocation is not null) })
                if (set)
                    context.Add(path.Attr(name), "applies to inline disks only; a volume brings its own (set it on the volume).");
        }
        if (Aio == "native" && Cache is not (null or "none" or "directsync"))
            context.Add(path.Attr("aio"), "\"native\" needs cache \"none\" or \"directsync\".");
        if (Preallocation == "metadata" && Format is not (null or "qcow2"))
            context.Add(path.Attr("preallocation"), "\"metadata\" applies to qcow2 only.");
        if (Ssd == true && path.Steps[^1].Name?.StartsWith("virtio", StringComparison.Ordinal) == true)
            context.Add(path.Attr("ssd"), "SSD emulation is not available on virtio disks (use scsi or sata).");
        ValidateThrottle(context, path);
        ValidateHostDevice(context, path);
    }
}

/// <summary>One CD-ROM drive.</summary>
public sealed class CdromSpec
{
    /// <summary>The ISO volume.</summary>
    [Setting("ISO volume in the drive (`<pool>/<name>`); unset for an empty drive. Changing it swaps the medium live.",
        Pattern = Patterns.VolumeId, PatternText = Patterns.VolumeIdText, Update = UpdateKind.Live)]
    public string? VolumeId { get; set; }
}

/// <summary>One network interface.</summary>
public sealed partial class NicSpec : IValidatable
{
    /// <summary>Model.</summary>
    [Setting("NIC model: `virtio`, `e1000`, `e1000e`, `rtl8139` or `vmxnet3`.", Default = "virtio",
        OneOf = ["virtio", "e1000", "e1000e", "rtl8139", "vmxnet3"])]
    public string? Model { get; set; }

    /// <summary>Bridge.</summary>
    [Setting("Bridge the interface's tap joins (a `kvm_network` name or an adopted bridge). Unset: QEMU user-mode NAT, as Proxmox does without a bridge.",
        Pattern = Patterns.InterfaceName, PatternText = Patterns.InterfaceNameText)]
    public string? Bridge { get; set; }

    /// <summary>MAC.</summary>
    [Setting("MAC address. Unset: a stable address derived from the VM ID and slot (see `mac_addresses`).",
        Pattern = Patterns.Mac, PatternText = "six hex byte pairs separated by ':'")]
    public string? Mac { get; set; }

    /// <summary>Queues.</summary>
    [Setting("Multiqueue: number of queue pairs (virtio only).", Min = 1, Max = 64)]
    public int? Queues { get; set; }

    /// <summary>MTU.</summary>
    [Setting("MTU the guest is told to use (virtio only).", Min = 576, Max = 65520)]
    public int? Mtu { get; set; }

    /// <summary>Link state.</summary>
    [Setting("Link state; `false` unplugs the virtual cable. Applied live.", Default = true, Update = UpdateKind.Live)]
    public bool? LinkUp { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (Mac is not null && Validator.Matches(Patterns.Mac, Mac) && (Convert.ToByte(Mac[..2], 16) & 1) == 1)
            context.Add(path.Attr("mac"), $"\"{Mac}\" is a multicast address; a NIC needs a unicast MAC (even first byte).");
        if (Queues is not null && Model is not (null or "virtio"))
            context.Add(path.Attr("queues"), "multiqueue needs the virtio model.");
        if (Mtu is not null && Model is not (null or "virtio"))
            context.Add(path.Attr("mtu"), "an MTU needs the virtio model.");
        ValidateHostSide(context, path);
    }
}

/// <summary>Display adapter and console.</summary>
public sealed class DisplaySpec
{
    /// <summary>VGA type.</summary>
    [Setting("Graphics adapter: `std`, `cirrus`, `vmware`, `qxl`, `virtio`, `none`, or `serial0` (no adapter; the first serial port is the console).",
        Default = "std", OneOf = ["std", "cirrus", "vmware", "qxl", "virtio", "none", "serial0"])]
    public string? Vga { get; set; }

    /// <summary>VGA memory.</summary>
    [Setting("Video memory in MiB (std, vmware, qxl).", Min = 4, Max = 512)]
    public int? MemoryMib { get; set; }

    /// <summary>VNC console.</summary>
    [Setting("Serve the display over VNC on the host's loopback (see `console_endpoint`).", Default = true)]
    public bool? Vnc { get; set; }

    /// <summary>SPICE console.</summary>
    [Setting("Serve the display (and `audio`, `usb_devices` redirection) over SPICE on a unix socket in the VM's run directory " +
        "(`<run dir>/spice.sock`, e.g. `remote-viewer spice+unix://…`). Best with `vga = \"qxl\"`.", Default = false)]
    public bool? Spice { get; set; }
}

/// <summary>Restart behaviour of updates (used by the plugins; stored with the VM so import round-trips).</summary>
public sealed class UpdatePolicySpec
{
    /// <summary>Restart policy.</summary>
    [Setting("`auto`: shut the VM down (bounded by `shutdown_timeout_seconds`, then force) and start it again so the changes apply. " +
        "`never`: apply them at the VM's next start (they show in `pending_changes`). `fail`: refuse the apply.",
        Default = "auto", OneOf = ["auto", "never", "fail"], Update = UpdateKind.Live)]
    public string? Restart { get; set; }

    /// <summary>Shutdown timeout.</summary>
    [Setting("Seconds to wait for a graceful (ACPI) shutdown before the VM is stopped by force.", Default = 120, Min = 0, Max = 3600, Update = UpdateKind.Live)]
    public int? ShutdownTimeoutSeconds { get; set; }
}
