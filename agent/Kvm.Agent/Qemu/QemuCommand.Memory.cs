using System.Globalization;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>DIMM slots offered when memory hot-plug is on; each live increase uses one.</summary>
    internal const int MemorySlots = 64;

    /// <summary>Id of the hugepage-backed main memory backend.</summary>
    internal const string RamBackendId = "pc.ram";

    private static void Memory(Context c)
    {
        var memory = c.Vm.Memory!;
        var size = memory.SizeMib!.Value;
        if (memory.HotplugMaxMib is { } max)
            c.Arg("-m", QemuOptions.Of("size=" + size.ToString(CultureInfo.InvariantCulture) + "M").Add("slots", MemorySlots).Add("maxmem", max.ToString(CultureInfo.InvariantCulture) + "M").ToString());
        else
            c.Arg("-m", size.ToString(CultureInfo.InvariantCulture));

        if (HugepageMount(c) is { } mount)
        {
            c.Arg("-object", QemuOptions.Of("memory-backend-file").Add("id", RamBackendId).Add("size", size.ToString(CultureInfo.InvariantCulture) + "M")
                .Add("mem-path", c.File(mount, Attr("memory").Attr("hugepages"), "hugetlbfs mount")).Add("share", true).Add("prealloc", true).ToString());
        }

        Numa(c);

        var balloon = memory.Balloon!;
        var at = Attr("memory").Attr("balloon").Attr("min_mib");
        if (balloon.MinMib is { } min)
        {
            if (balloon.Enabled == false)
                c.Error(at, "needs the balloon device (memory.balloon.enabled = true).");
            else if (min > size)
                c.Error(at, $"{min} MiB is more than memory.size_mib ({size} MiB); the balloon can only take memory back.");
        }
    }

    /// <summary>The -machine properties of the memory section: KSM (mem-merge) and the hugepage backend.</summary>
    private static void MachineMemory(Context c, QemuOptions.Builder machine)
    {
        if (c.Vm.Memory!.Ksm == false)
            machine.Add("mem-merge", false);
        if (c.Vm.Memory.Hugepages is not null)
            machine.Add("memory-backend", RamBackendId);
    }

    /// <summary>The hugetlbfs mount for memory.hugepages (null when unset; an error when the host lacks it).</summary>
    private static string? HugepageMount(Context c)
    {
        var memory = c.Vm.Memory!;
        if (memory.Hugepages is not { } wanted)
            return null;
        var mounts = c.Facts.HugepageMounts ?? new Dictionary<string, string>();
        var size = memory.SizeMib!.Value;
        var page = wanted switch
        {
            "any" => size % 1024 == 0 && mounts.ContainsKey("1024") ? "1024" : "2",
            _ => wanted,
        };
        if (mounts.GetValueOrDefault(page) is { } mount)
            return mount;
        var have = mounts.Count == 0 ? "none" : string.Join(", ", mounts.Keys.Order(StringComparer.Ordinal).Select(k => k + " MiB"));
        c.Error(Attr("memory").Attr("hugepages"), $"this host has no hugetlbfs mount for {page} MiB pages (mounted page sizes: {have}; see kvm_host.hugepage_sizes_mib).");
        return null;
    }

    private static void Balloon(Context c)
    {
        if (c.Vm.Memory!.Balloon!.Enabled == true)
            c.Arg("-device", $"virtio-balloon-pci,id=balloon0,addr={PciAddress(BalloonSlot)}");
    }
}
