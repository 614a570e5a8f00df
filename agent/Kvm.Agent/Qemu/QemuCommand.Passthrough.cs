using System.Globalization;
using Kvm.Model;

namespace Kvm.Agent.Qemu;

// PCI passthrough (vfio-pci) and virtiofs shares. They come after the storage devices in argv, so their
// auto-assigned PCI addresses never move a disk controller.
public static partial class QemuCommand
{
    /// <summary>Chassis number of the root ports made for PCIe passthrough (slot = hostpci index + 1).</summary>
    internal const int PassthroughChassis = 2;

    /// <summary>Unix socket a share's virtiofsd listens on.</summary>
    public static string VirtiofsSocket(VmPaths paths, string slot)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return paths.RunDir.TrimEnd('/') + "/" + slot + ".sock";
    }

    internal static bool HasPrimaryGpu(Context c) => c.Vm.PciDevices?.Values.Any(p => p.PrimaryGpu == true) == true;

    private static void Passthrough(Context c)
    {
        PciPassthrough(c);
        SharedDirs(c);
    }

    private static void PciPassthrough(Context c)
    {
        var devices = c.Vm.PciDevices ?? [];
        foreach (var slot in devices.Keys.Order(SlotComparer))
        {
            var pci = devices[slot];
            var at = Attr("pci_devices").Key(slot);
            var index = ParseSlot(slot).Index;
            string[] functions = [pci.FullAddress()];
            if (pci.AllFunctions())
            {
                if (pci.Pcie != true)
                    c.Error(at.Attr("address"), "passing every function of a device (no \".function\") needs pcie = true: the functions share the device's own root port.");
                if (c.Paths.PciFunctions.GetValueOrDefault(slot) is not { Count: > 0 } resolved)
                {
                    c.Error(at.Attr("address"), $"internal: the functions of {pci.FullAddress()} were not resolved.");
                    continue;
                }
                functions = [.. resolved];
            }
            string? bus = null;
            if (pci.Pcie == true)
            {
                bus = slot + "-port";
                c.Arg("-device", QemuOptions.Of("pcie-root-port").Add("id", bus).Add("bus", "pcie.0")
                    .Add("chassis", PassthroughChassis).Add("slot", index + 1).ToString());
            }
            for (var f = 0; f < functions.Length; f++)
            {
                var first = f == 0;
                var device = QemuOptions.Of("vfio-pci").Add("host", functions[f])
                    .Add("id", functions.Length == 1 ? slot : slot + "." + f.ToString(CultureInfo.InvariantCulture));
                if (bus is not null)
                    device.Add("bus", bus);
                if (functions.Length > 1)
                    device.Add("addr", "0x0." + f.ToString(CultureInfo.InvariantCulture)).AddIf(first, "multifunction", "on");
                if (first)
                {
                    if (pci.Rombar == false)
                        device.Add("rombar", 0);
                    if (pci.RomFile is { } rom)
                        device.Add("romfile", c.Safe(rom, at.Attr("rom_file")));
                    if (pci.PrimaryGpu == true)
                        device.Add("x-vga", true);
                    device.AddIf("x-pci-vendor-id", pci.VendorId?.ToLowerInvariant()).AddIf("x-pci-device-id", pci.DeviceId?.ToLowerInvariant());
                }
                c.Arg("-device", device.ToString());
            }
        }
    }

    private static void SharedDirs(Context c)
    {
        var shares = c.Vm.SharedDirs ?? [];
        if (shares.Count == 0)
            return;
        // vhost-user devices read guest memory from another process: the RAM must be a shareable file (memfd).
        var size = c.Vm.Memory!.SizeMib!.Value;
        c.Arg("-object", $"memory-backend-memfd,id=ram0,size={size.ToString(CultureInfo.InvariantCulture)}M,share=on");
        c.Arg("-machine", "memory-backend=ram0");
        foreach (var slot in shares.Keys.Order(SlotComparer))
        {
            var share = shares[slot];
            var socket = c.File(VirtiofsSocket(c.Paths, slot), Attr("vm_id"), $"{slot} socket");
            CheckSocketPath(c, socket, $"{slot} socket");
            c.Arg("-chardev", QemuOptions.Of("socket").Add("id", slot).Add("path", socket).ToString());
            c.Arg("-device", QemuOptions.Of("vhost-user-fs-pci").Add("chardev", slot).Add("tag", share.Tag ?? slot).Add("id", slot).ToString());
        }
    }
}
