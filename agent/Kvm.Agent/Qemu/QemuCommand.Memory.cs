using System.Globalization;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    private static void Memory(Context c)
    {
        var size = c.Vm.Memory!.SizeMib!.Value;
        c.Arg("-m", size.ToString(CultureInfo.InvariantCulture));

        var balloon = c.Vm.Memory.Balloon!;
        var at = Attr("memory").Attr("balloon").Attr("min_mib");
        if (balloon.MinMib is { } min)
        {
            if (balloon.Enabled == false)
                c.Error(at, "needs the balloon device (memory.balloon.enabled = true).");
            else if (min > size)
                c.Error(at, $"{min} MiB is more than memory.size_mib ({size} MiB); the balloon can only take memory back.");
        }
    }

    private static void Balloon(Context c)
    {
        if (c.Vm.Memory!.Balloon!.Enabled == true)
            c.Arg("-device", $"virtio-balloon-pci,id=balloon0,addr={PciAddress(BalloonSlot)}");
    }
}
