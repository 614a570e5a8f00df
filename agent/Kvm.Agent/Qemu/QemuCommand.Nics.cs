using Kvm.Model;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    private static readonly IReadOnlyDictionary<string, string> NicDevices = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["virtio"] = "virtio-net-pci",
        ["e1000"] = "e1000",
        ["e1000e"] = "e1000e",
        ["rtl8139"] = "rtl8139",
        ["vmxnet3"] = "vmxnet3",
    };

    private static void Nics(Context c)
    {
        foreach (var (slot, nic) in (c.Vm.NetworkInterfaces ?? []).OrderBy(n => n.Key, SlotComparer))
            Nic(c, slot, nic);
    }

    /// <summary>The <c>-netdev</c> and <c>-device</c> of one NIC: the argv's, and what a hot-plug sends.</summary>
    private static void Nic(Context c, string slot, NicSpec nic)
    {
        var at = Attr("network_interfaces").Key(slot);
        var virtio = nic.Model == "virtio";
        var queues = nic.Queues ?? 1;
        var mac = c.Paths.Macs.GetValueOrDefault(slot) ?? nic.Mac ?? (c.Vm.VmId is { } id ? MacAddress.Generate(id, slot) : null);
        if (mac is null)
        {
            c.Error(at.Attr("mac"), "internal: the agent resolved no MAC address for this interface.");
            return;
        }

        QemuOptions.Builder netdev;
        if (nic.Bridge is not null)
        {
            if (c.Paths.Taps.GetValueOrDefault(slot) is not { } tap)
            {
                c.Error(at.Attr("bridge"), "internal: the agent resolved no tap interface for this bridged interface.");
                return;
            }
            netdev = QemuOptions.Of("tap").Add("id", slot).Add("ifname", c.Safe(tap, at.Attr("bridge")))
                .Add("script", "no").Add("downscript", "no");
            // vhost-net moves virtio-net's data path into the host kernel; it only exists for KVM guests.
            if (virtio && c.Kvm)
                netdev.Add("vhost", true);
            if (queues > 1)
                netdev.Add("queues", queues);
        }
        else
        {
            if (queues > 1)
                c.Error(at.Attr("queues"), "multiqueue needs a bridged interface (a tap); user-mode networking has a single queue.");
            netdev = QemuOptions.Of("user").Add("id", slot);
        }
        c.Arg("-netdev", netdev.ToString());

        var device = QemuOptions.Of(NicDevices[nic.Model!]).Add("netdev", slot).Add("id", slot).Add("mac", c.Safe(mac, at.Attr("mac")));
        var index = ParseSlot(slot).Index;
        if (index < PinnedNics)
            device.Add("addr", PciAddress(FirstNicSlot + index));
        if (queues > 1)
            device.Add("mq", true).Add("vectors", 2 * queues + 2); // a vector per queue each way, plus config and control
        if (nic.Mtu is { } mtu)
            device.Add("host_mtu", mtu);
        AddBootIndex(c, slot, device);
        c.Arg("-device", device.ToString());
    }

    /// <summary>
    /// QMP commands the agent sends right after QEMU starts (before <c>cont</c> when it starts paused):
    /// settings QEMU has no command-line form for. virtio-net and the other NICs have no start-up link
    /// property, so a cable pulled in the spec is pulled with <c>set_link</c>; a balloon target is set with
    /// <c>balloon</c>; disk I/O limits with <c>block_set_io_throttle</c>.
    /// </summary>
    public static IReadOnlyList<QmpCommand> PostStartCommands(VmSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var vm = Defaults.Apply(spec);
        var commands = new List<QmpCommand>();
        foreach (var (slot, nic) in (vm.NetworkInterfaces ?? []).OrderBy(n => n.Key, SlotComparer))
            if (nic.LinkUp == false)
                commands.Add(new QmpCommand("set_link", new Dictionary<string, object> { ["name"] = slot, ["up"] = false }));
        foreach (var (slot, disk) in (vm.Disks ?? []).OrderBy(d => d.Key, SlotComparer))
            if (disk.HasThrottle())
                commands.Add(ThrottleCommand(spec, slot));
        var memory = vm.Memory!;
        if (memory.Balloon is { Enabled: true, MinMib: { } min } && min < memory.SizeMib)
            commands.Add(new QmpCommand("balloon", new Dictionary<string, object> { ["value"] = min * 1024 * 1024 }));
        return commands;
    }
}

/// <summary>One QMP command: <c>{"execute": …, "arguments": {…}}</c>.</summary>
public sealed record QmpCommand(string Execute, IReadOnlyDictionary<string, object> Arguments);
