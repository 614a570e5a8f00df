using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>The desired configuration of a virtual machine: everything a user sets.</summary>
public partial class VmSpec : IValidatable
{
    /// <summary>Numeric VM ID.</summary>
    [Setting("Numeric VM ID, unique on the host, like Proxmox's VMID. Allocated by the agent (lowest free ID from 100) when not set.",
        Min = 100, Max = 999_999_999, Computed = true, Update = UpdateKind.Replace)]
    public long? VmId { get; set; }

    /// <summary>VM name.</summary>
    [Setting("Name of the VM, unique on its host. Shown in QEMU's window title and process list.",
        Required = true, Pattern = Patterns.VmName, PatternText = Patterns.VmNameText, MaxLength = 63, Update = UpdateKind.Live)]
    public string? Name { get; set; }

    /// <summary>Free text.</summary>
    [Setting("Free-text description, for people.", MaxLength = 8192, Update = UpdateKind.Live)]
    public string? Description { get; set; }

    /// <summary>Tags.</summary>
    [Setting("Tags for grouping and filtering. Order does not matter.", Set = true, Pattern = Patterns.Tag,
        PatternText = "lower-case letters, digits, '_', '+', '.', '-'", Update = UpdateKind.Live)]
    public List<string>? Tags { get; set; }

    /// <summary>Machine type.</summary>
    [Setting("QEMU machine type: `q35` (PCIe, recommended), `pc` (i440fx), or a versioned type such as `pc-q35-7.2`.",
        Default = "q35", Pattern = "q35|pc|pc-q35-[0-9]+\\.[0-9]+|pc-i440fx-[0-9]+\\.[0-9]+", PatternText = "q35, pc, pc-q35-X.Y or pc-i440fx-X.Y")]
    public string? Machine { get; set; }

    /// <summary>Guest OS family.</summary>
    [Setting("Guest operating system family. `windows` gets a local-time real-time clock and Hyper-V enlightenments.",
        Default = "linux", OneOf = ["linux", "windows", "other"])]
    public string? OsType { get; set; }

    /// <summary>Hardware acceleration.</summary>
    [Setting("Use KVM hardware virtualization; `false` runs the VM under TCG emulation. Unset: the agent's `--accel` default.")]
    public bool? Kvm { get; set; }

    /// <summary>ACPI.</summary>
    [Setting("Enable ACPI (needed for graceful shutdown).", Default = true)]
    public bool? Acpi { get; set; }

    /// <summary>USB tablet.</summary>
    [Setting("Add a USB tablet so the VNC pointer follows the mouse exactly.", Default = true)]
    public bool? Tablet { get; set; }

    /// <summary>RTC base.</summary>
    [Setting("Real-time clock base: `utc` or `localtime`.", DefaultText = "`localtime` when `os_type` is `windows`, otherwise `utc`",
        OneOf = ["utc", "localtime"])]
    public string? RtcBase { get; set; }

    /// <summary>Firmware.</summary>
    [Setting("Firmware: SeaBIOS or UEFI (OVMF) with a per-VM EFI variable store.")]
    public FirmwareSpec? Firmware { get; set; }

    /// <summary>CPU.</summary>
    [Setting("CPU topology, model and flags.")]
    public CpuSpec? Cpu { get; set; }

    /// <summary>Memory.</summary>
    [Setting("Memory size and the balloon device.")]
    public MemorySpec? Memory { get; set; }

    /// <summary>SCSI controller model.</summary>
    [Setting("SCSI controller model for `scsiN` disks and CD-ROMs. `virtio-scsi-single` gives each disk its own controller (and iothread).",
        Default = "virtio-scsi-single", OneOf = ["lsi", "lsi53c810", "megasas", "pvscsi", "virtio-scsi-pci", "virtio-scsi-single"])]
    public string? ScsiController { get; set; }

    /// <summary>Disks by slot.</summary>
    [Setting("Disks by slot (`scsi0`, `virtio0`, `sata0`, `ide0`, …). Each is either an inline disk created with the VM " +
        "(`size_gib`), deleted with it, or a standalone volume (`volume_id`) that survives the VM.",
        KeyPattern = Patterns.DiskSlot, KeyPatternText = Patterns.DiskSlotText, Hotplug = HotplugDisk)]
    public Dictionary<string, DiskSpec>? Disks { get; set; }

    /// <summary>CD-ROM drives by slot.</summary>
    [Setting("CD-ROM drives by slot (`ide2`, `sata0`, `scsi1`, …). Changing the medium applies live.",
        KeyPattern = Patterns.CdromSlot, KeyPatternText = Patterns.CdromSlotText)]
    public Dictionary<string, CdromSpec>? Cdroms { get; set; }

    /// <summary>Boot order.</summary>
    [Setting("Boot order as slot names of disks, CD-ROMs and network interfaces, e.g. `[\"scsi0\", \"ide2\", \"net0\"]`.",
        DefaultText = "the disks in slot order")]
    public List<string>? BootOrder { get; set; }

    /// <summary>NICs by slot.</summary>
    [Setting("Network interfaces by slot (`net0` … `net31`).", KeyPattern = Patterns.NicSlot, KeyPatternText = Patterns.NicSlotText, Hotplug = HotplugNetwork)]
    public Dictionary<string, NicSpec>? NetworkInterfaces { get; set; }

    /// <summary>Display.</summary>
    [Setting("Graphics adapter and the VNC console.")]
    public DisplaySpec? Display { get; set; }

    /// <summary>Direct kernel boot: kernel.</summary>
    [Setting("Direct kernel boot: absolute host path of a kernel image the VM boots instead of its disks' boot loader.",
        Pattern = Patterns.AbsolutePath, PatternText = "an absolute path", MaxLength = 4096)]
    public string? Kernel { get; set; }

    /// <summary>Direct kernel boot: initrd.</summary>
    [Setting("Direct kernel boot: absolute host path of an initial ramdisk. Needs `kernel`.",
        Pattern = Patterns.AbsolutePath, PatternText = "an absolute path", MaxLength = 4096)]
    public string? Initrd { get; set; }

    /// <summary>Direct kernel boot: command line.</summary>
    [Setting("Direct kernel boot: kernel command line. Needs `kernel`.", MaxLength = 4096)]
    public string? Cmdline { get; set; }

    /// <summary>Cloud-init seed.</summary>
    [Setting("Cloud-init: a NoCloud or ConfigDrive2 seed the agent makes from these settings and attaches as a read-only CD-ROM. " +
        "Content changes regenerate the seed and swap it into the running VM; `on_change` decides whether the guest reboots or re-provisions.",
        NullMeansAbsent = true)]
    public CloudInitSpec? CloudInit { get; set; }

    /// <summary>Virtual TPM.</summary>
    [Setting("A virtual TPM (swtpm) whose state is kept with the VM and deleted with it, like Proxmox's `tpmstate0`. " +
        "Adding or removing it applies at the VM's next start; removing it deletes the TPM state at that start.", NullMeansAbsent = true)]
    public TpmSpec? Tpm { get; set; }

    /// <summary>Autostart with the host.</summary>
    [Setting("Start the VM with the host (when the agent starts), in order, like Proxmox's `onboot` and `startup`.", NullMeansAbsent = true, Update = UpdateKind.Live)]
    public AutostartSpec? Autostart { get; set; }

    /// <summary>Power state.</summary>
    [Setting("Desired power state, enforced on every apply: `running`, `stopped` or `paused`.",
        Default = "running", OneOf = ["running", "stopped", "paused"], Update = UpdateKind.Live)]
    public string? PowerState { get; set; }

    /// <summary>Deletion protection.</summary>
    [Setting("Protect the VM and its disks from deletion, like Proxmox's `protection`.", Default = false, Update = UpdateKind.Live)]
    public bool? Protection { get; set; }

    /// <summary>What an apply does with settings that need a restart.</summary>
    [Setting("What Terraform and Pulumi do when an update changes settings that need the VM restarted.")]
    public UpdatePolicySpec? UpdatePolicy { get; set; }

    /// <summary>QEMU guest agent.</summary>
    [Setting("The QEMU guest agent channel and what the agent uses it for, like Proxmox's `agent` option.")]
    public AgentSpec? Agent { get; set; }

    /// <summary>Waiting for IP addresses.</summary>
    [Setting("Make Terraform and Pulumi wait, after creating or starting the VM (never on refresh), until its interfaces have IP addresses " +
        "(from the guest agent, DHCP leases or the neighbour table). Unset: no waiting.", NullMeansAbsent = true, Update = UpdateKind.Live)]
    public WaitForIpSpec? WaitForIp { get; set; }

    /// <inheritdoc />
    public virtual void Validate(ValidationContext context, AttrPath path)
    {
        var disks = Disks ?? [];
        var cdroms = Cdroms ?? [];
        var nics = NetworkInterfaces ?? [];
        foreach (var slot in cdroms.Keys.Where(disks.ContainsKey))
            context.Add(path.Attr("cdroms").Key(slot), $"slot \"{slot}\" is already used by a disk.");
        var machine = Machine ?? "q35";
        var q35 = machine.Contains("q35", StringComparison.Ordinal);
        foreach (var slot in disks.Keys.Concat(cdroms.Keys).Where(s => s.StartsWith("sata", StringComparison.Ordinal) && !q35))
            context.Add(path.Attr(disks.ContainsKey(slot) ? "disks" : "cdroms").Key(slot), "SATA slots need the q35 machine type.");
        foreach (var slot in disks.Keys.Concat(cdroms.Keys).Where(s => q35 && s is "ide1" or "ide3"))
            context.Add(path.Attr(disks.ContainsKey(slot) ? "disks" : "cdroms").Key(slot), "q35 has one IDE unit per bus: use ide0 or ide2.");
        if (BootOrder is { } order)
        {
            for (var i = 0; i < order.Count; i++)
            {
                if (!disks.ContainsKey(order[i]) && !cdroms.ContainsKey(order[i]) && !nics.ContainsKey(order[i]))
                    context.Add(path.Attr("boot_order").At(i), $"\"{Validator.Printable(order[i])}\" is not a disk, CD-ROM or network interface slot of this VM.");
                else if (order.IndexOf(order[i]) != i)
                    context.Add(path.Attr("boot_order").At(i), $"\"{order[i]}\" is listed twice.");
            }
        }
        if (Kernel is null && (Initrd is not null || Cmdline is not null))
            context.Add(path.Attr(Initrd is not null ? "initrd" : "cmdline"), "needs `kernel` (direct kernel boot).");
        if (Firmware is { SecureBoot: true, Type: not "uefi" })
            context.Add(path.Attr("firmware").Attr("secure_boot"), "needs firmware type \"uefi\".");
        if (Firmware is { SecureBoot: true } && !q35)
            context.Add(path.Attr("firmware").Attr("secure_boot"), "needs the q35 machine type (SMM).");
        CloudInitSpec.ValidateIn(this, context, path);
        var macs = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (slot, nic) in nics)
        {
            if (nic.Mac is null) continue;
            if (macs.TryGetValue(nic.Mac, out var other))
                context.Add(path.Attr("network_interfaces").Key(slot).Attr("mac"), $"is also used by {other}.");
            macs[nic.Mac] = slot;
        }
        GuestAgentRules.Validate(this, context, path);
        DeviceRules.Validate(this, context, path);
        ValidateTemplate(context, path);
        NumaRules.Validate(this, context, path);
    }

    /// <summary>Rules that compare an update with the current spec (things that can only grow).</summary>
    public IReadOnlyList<ValidationError> ValidateUpdate(VmSpec before)
    {
        var context = new ValidationContext();
        foreach (var (slot, disk) in Disks ?? [])
        {
            if (before.Disks?.GetValueOrDefault(slot) is { SizeGib: { } old } && disk.SizeGib is { } now && now < old && disk.VolumeId is null)
                context.Add(AttrPath.Root.Attr("disks").Key(slot).Attr("size_gib"), $"disks can only grow: {now} GiB is smaller than the current {old} GiB.");
        }
        TpmSpec.ValidateUpdate(before, this, context);
        ValidateTemplateUpdate(before, context);
        return context.Errors;
    }
}

/// <summary>A VM as the agent reports it: the spec the user set plus what the agent observed.</summary>
[Resource("vm", "A QEMU/KVM virtual machine on a host, with every setting Proxmox's `qm` offers for its disks, network interfaces, firmware, CPU and memory.")]
public sealed partial class Vm : VmSpec
{
    /// <summary>Observed status.</summary>
    [Setting("Observed status: `running`, `paused`, `stopped`, `internal-error`, `io-error`, `guest-panicked` or `crashed` (QEMU died).", ReadOnly = true)]
    public string? Status { get; set; }

    /// <summary>QEMU process id.</summary>
    [Setting("Process ID of the VM's QEMU while it runs.", ReadOnly = true)]
    public long? Pid { get; set; }

    /// <summary>Start time.</summary>
    [Setting("When the VM's QEMU started (RFC 3339), while it runs.", ReadOnly = true)]
    public string? StartedAt { get; set; }

    /// <summary>Accelerator in use.</summary>
    [Setting("Accelerator the VM runs (or will run) with: `kvm` or `tcg`.", ReadOnly = true)]
    public string? Accelerator { get; set; }

    /// <summary>Pending changes.</summary>
    [Setting("Settings changed while the VM ran that take effect at its next start.", ReadOnly = true)]
    public List<string>? PendingChanges { get; set; }

    /// <summary>Effective MACs.</summary>
    [Setting("MAC address of each network interface slot (generated ones included).", ReadOnly = true)]
    public Dictionary<string, string>? MacAddresses { get; set; }

    /// <summary>Cloud-init instance-id.</summary>
    [Setting("Instance-id of the cloud-init seed, derived from its content; it changes only when `cloud_init.on_change` is `reprovision`.", ReadOnly = true)]
    public string? CloudInitInstanceId { get; set; }

    /// <summary>IPv4 per slot.</summary>
    [Setting("IPv4 addresses of each network interface slot, as last observed (see `kvm_vm_addresses` for a fresh look). Reading the VM never waits for them.", ReadOnly = true)]
    public Dictionary<string, List<string>>? Ipv4Addresses { get; set; }

    /// <summary>IPv6 per slot.</summary>
    [Setting("IPv6 addresses of each network interface slot (link-local ones excluded), as last observed.", ReadOnly = true)]
    public Dictionary<string, List<string>>? Ipv6Addresses { get; set; }

    /// <summary>Primary IPv4.</summary>
    [Setting("The first IPv4 address of the first network interface slot that has one, as last observed.", ReadOnly = true)]
    public string? PrimaryIpv4 { get; set; }

    /// <summary>VNC endpoint.</summary>
    [Setting("VNC console address (`vnc://127.0.0.1:5901`) while the VM runs; the console listens on the host's loopback only.", ReadOnly = true)]
    public string? ConsoleEndpoint { get; set; }

    /// <summary>Serial log.</summary>
    [Setting("Host path of the log that receives the VM's first serial port.", ReadOnly = true)]
    public string? SerialLog { get; set; }

    /// <summary>The user-set part only, as stored and as sent back in an update.</summary>
    public VmSpec ToSpec()
    {
        var spec = new VmSpec();
        foreach (var attribute in Schemas.For<VmSpec>().Attributes)
            attribute.Property.SetValue(spec, attribute.GetValue(this));
        return spec;
    }
}
