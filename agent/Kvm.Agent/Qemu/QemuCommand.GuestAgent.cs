namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>Fixed PCI slot of the guest agent's virtio-serial controller (Proxmox uses the same one).</summary>
    internal const int GuestAgentSlot = 0x08;

    /// <summary>The name qemu-guest-agent looks for (/dev/virtio-ports/org.qemu.guest_agent.0).</summary>
    public const string GuestAgentPortName = "org.qemu.guest_agent.0";

    /// <summary>Unix socket of the VM's guest agent channel; the agent is its only client.</summary>
    public static string GuestAgentSocket(VmPaths paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return GuestAgentSocket(paths.RunDir);
    }

    /// <summary>Unix socket of the guest agent channel of the VM whose run directory is <paramref name="runDir"/>.</summary>
    public static string GuestAgentSocket(string runDir)
    {
        ArgumentNullException.ThrowIfNull(runDir);
        return runDir.TrimEnd('/') + "/qga.sock";
    }

    private static void GuestAgent(Context c)
    {
        var agent = c.Vm.Agent!;
        if (agent.Enabled != true)
            return;
        var socket = c.File(GuestAgentSocket(c.Paths), Attr("vm_id"), "guest agent socket");
        CheckSocketPath(c, socket, "guest agent socket");
        c.Arg("-chardev", QemuOptions.Of("socket").Add("id", "qga0").Add("path", socket).Add("server", true).Add("wait", false).ToString());
        if (agent.Type == "isa")
        {
            // The next free ISA serial port (COM2 when serial0 is COM1); the guest runs qemu-ga -m isa-serial on it.
            c.Arg("-device", "isa-serial,chardev=qga0,id=qga0" + IsaAgentIndex(c));
            return;
        }
        c.Arg("-device", $"virtio-serial-pci,id=qga0-bus,addr={PciAddress(GuestAgentSlot)}");
        c.Arg("-device", QemuOptions.Of("virtserialport").Add("bus", "qga0-bus.0").Add("chardev", "qga0").Add("id", "qga0")
            .Add("name", GuestAgentPortName).ToString());
    }
}
