using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Model;

/// <summary>The QEMU guest agent channel, like Proxmox's <c>agent</c> option.</summary>
public sealed class AgentSpec
{
    /// <summary>Enabled.</summary>
    [Setting("Add the QEMU guest agent channel (`org.qemu.guest_agent.0`). The guest must run `qemu-guest-agent`; the agent then uses it " +
        "for graceful shutdown, the guest's IP addresses and file-system freeze/trim.", Default = false)]
    public bool? Enabled { get; set; }

    /// <summary>Channel type.</summary>
    [Setting("Channel device: `virtio` (a virtio-serial port, what Linux and the Windows VirtIO drivers expect) or `isa` (a second ISA serial port).",
        Default = "virtio", OneOf = ["virtio", "isa"])]
    public string? Type { get; set; }

    /// <summary>Shutdown through the agent.</summary>
    [Setting("Shut the guest down with the guest agent's `guest-shutdown` when it answers, falling back to the ACPI power button when it does not.",
        Default = true, Update = UpdateKind.Live)]
    public bool? UseForShutdown { get; set; }

    /// <summary>fstrim after growth.</summary>
    [Setting("Run `fstrim` in the guest (guest-fstrim) after one of the VM's disks was grown live, so a thin image gives freed space back " +
        "(Proxmox's `fstrim_cloned_disks`).", Default = false, Update = UpdateKind.Live)]
    public bool? FstrimClonedDisks { get; set; }
}

/// <summary>Waiting for the guest's IP addresses after create and start (never on refresh).</summary>
public sealed class WaitForIpSpec : IValidatable
{
    /// <summary>Timeout.</summary>
    [Setting("How long Terraform and Pulumi wait, after creating or starting the VM, for an address to appear; then the apply fails naming the sources it tried.",
        Default = 300, Min = 1, Max = 3600, Update = UpdateKind.Live)]
    public int? TimeoutSeconds { get; set; }

    /// <summary>IPv4.</summary>
    [Setting("Wait for an IPv4 address.", Default = true, Update = UpdateKind.Live)]
    public bool? Ipv4 { get; set; }

    /// <summary>IPv6.</summary>
    [Setting("Wait for a global IPv6 address (link-local addresses never count).", Default = false, Update = UpdateKind.Live)]
    public bool? Ipv6 { get; set; }

    /// <summary>Interfaces.</summary>
    [Setting("Network interface slots that must each get an address.", DefaultText = "the first slot of `network_interfaces`", Set = true,
        Pattern = Patterns.NicSlot, PatternText = Patterns.NicSlotText, Update = UpdateKind.Live)]
    public List<string>? Interfaces { get; set; }

    /// <inheritdoc />
    public void Validate(ValidationContext context, AttrPath path)
    {
        if (Ipv4 == false && Ipv6 != true)
            context.Add(path.Attr("ipv4"), "wait for at least one family: ipv4 or ipv6.");
    }
}

/// <summary>The guest's addresses as the agent sees them from every source it has, matched to NIC slots by MAC.</summary>
[Resource("vm_addresses", "The IP addresses of a VM's network interfaces, from the QEMU guest agent, the DHCP leases of managed networks and the " +
    "host's neighbour table, matched by MAC. Never waits: a source that does not answer at once is reported in `sources` and skipped.")]
public sealed class VmAddresses
{
    /// <summary>VM ID.</summary>
    [Setting("Numeric VM ID of the VM.", Required = true, Min = 100, Max = 999_999_999)]
    public long? VmId { get; set; }

    /// <summary>MACs.</summary>
    [Setting("MAC address of each network interface slot.", ReadOnly = true)]
    public Dictionary<string, string>? MacAddresses { get; set; }

    /// <summary>IPv4 per slot.</summary>
    [Setting("IPv4 addresses of each network interface slot.", ReadOnly = true)]
    public Dictionary<string, List<string>>? Ipv4Addresses { get; set; }

    /// <summary>IPv6 per slot.</summary>
    [Setting("IPv6 addresses of each network interface slot (link-local ones excluded).", ReadOnly = true)]
    public Dictionary<string, List<string>>? Ipv6Addresses { get; set; }

    /// <summary>Primary IPv4.</summary>
    [Setting("The first IPv4 address of the first network interface slot that has one.", ReadOnly = true)]
    public string? PrimaryIpv4 { get; set; }

    /// <summary>Interfaces.</summary>
    [Setting("One entry per network interface slot: what each source reported for its MAC.", ReadOnly = true)]
    public List<GuestInterface>? Interfaces { get; set; }

    /// <summary>Sources.</summary>
    [Setting("Each source the agent asked, and what came of it.", ReadOnly = true)]
    public List<AddressSource>? Sources { get; set; }
}

/// <summary>One NIC slot's addresses.</summary>
public sealed class GuestInterface
{
    /// <summary>Slot.</summary>
    [Setting("Network interface slot (`net0`, …).", ReadOnly = true)]
    public string? Slot { get; set; }

    /// <summary>MAC.</summary>
    [Setting("MAC address.", ReadOnly = true)]
    public string? Mac { get; set; }

    /// <summary>Guest name.</summary>
    [Setting("Interface name inside the guest (from the guest agent).", ReadOnly = true)]
    public string? GuestName { get; set; }

    /// <summary>IPv4.</summary>
    [Setting("IPv4 addresses.", ReadOnly = true)]
    public List<string>? Ipv4 { get; set; }

    /// <summary>IPv6.</summary>
    [Setting("IPv6 addresses (link-local ones excluded).", ReadOnly = true)]
    public List<string>? Ipv6 { get; set; }

    /// <summary>Sources.</summary>
    [Setting("Sources that reported an address for this MAC: `agent`, `lease`, `neighbor`.", ReadOnly = true)]
    public List<string>? Sources { get; set; }
}

/// <summary>How one address source fared.</summary>
public sealed class AddressSource
{
    /// <summary>Name.</summary>
    [Setting("`agent` (QEMU guest agent), `lease` (DHCP leases of managed networks) or `neighbor` (the host's neighbour table).", ReadOnly = true)]
    public string? Name { get; set; }

    /// <summary>Status.</summary>
    [Setting("`ok` (asked, answered), `unavailable` (asked, no answer in time or an error), or `skipped` (not applicable to this VM).", ReadOnly = true)]
    public string? Status { get; set; }

    /// <summary>Detail.</summary>
    [Setting("What happened, for people.", ReadOnly = true)]
    public string? Detail { get; set; }
}

/// <summary>Cross-field rules of the guest agent settings, called from <see cref="VmSpec.Validate"/>.</summary>
internal static class GuestAgentRules
{
    public static void Validate(VmSpec vm, ValidationContext context, AttrPath path)
    {
        if (vm.WaitForIp is not { } wait)
            return;
        var nics = vm.NetworkInterfaces ?? [];
        if (nics.Count == 0)
            context.Add(path.Attr("wait_for_ip"), "the VM has no network interfaces to wait for.");
        foreach (var slot in wait.Interfaces ?? [])
            if (nics.Count > 0 && !nics.ContainsKey(slot))
                context.Add(path.Attr("wait_for_ip").Attr("interfaces"), $"\"{slot}\" is not a slot of network_interfaces.");
    }
}
