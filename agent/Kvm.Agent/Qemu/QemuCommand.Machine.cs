using System.Text;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>Unix socket paths longer than this do not fit sockaddr_un (108 bytes with the terminator).</summary>
    internal const int MaxSocketPathBytes = 107;

    private static void Machine(Context c)
    {
        var vm = c.Vm;
        var machine = vm.Machine!;
        if (c.Facts.MachineTypes.Count > 0 && !c.Facts.MachineTypes.Contains(machine, StringComparer.Ordinal))
            c.Error(Attr("machine"), $"\"{machine}\" is not a machine type of this host's QEMU {c.Facts.QemuVersion} (see kvm_host.machine_types).");

        var kvm = c.User.Kvm ?? c.Facts.DefaultAccelerator == "kvm";
        if (kvm && !c.Facts.KvmPresent)
            c.Error(Attr("kvm"), "KVM is not available on this host (/dev/kvm is missing or cannot be opened); set kvm = false to run under TCG emulation.");
        c.Accelerator = kvm ? "kvm" : "tcg";

        var options = QemuOptions.Of("type=" + QemuOptions.Escape(machine)).Add("accel", c.Accelerator);
        // Secure-boot OVMF keeps its variables in SMM-protected flash; without SMM it refuses to run.
        if (vm.Firmware is { Type: "uefi", SecureBoot: true })
            options.Add("smm", true);
        if (vm.Acpi == false)
            options.Add("acpi", false);
        MachineMemory(c, options);
        if (vm.Firmware!.Type == "uefi")
            options.Add("pflash0", EfiCodeNode).Add("pflash1", EfiVarsNode);
        c.Arg("-machine", options.ToString());
    }

    private static void Clock(Context c)
    {
        var vm = c.Vm;
        var rtcBase = vm.RtcBase ?? (c.Windows ? "localtime" : "utc");
        // Windows keeps the RTC in local time and, unlike Linux, does not recover from lost timer ticks.
        if (rtcBase != "utc" || c.Windows)
            c.Arg("-rtc", QemuOptions.Of("base=" + rtcBase).AddIf(c.Windows, "driftfix", "slew").ToString());
        if (c.Windows && c.Kvm)
            c.Arg("-global", "kvm-pit.lost_tick_policy=discard");
    }

    /// <summary>Fills <see cref="Context.BootIndex"/>: the boot order, or the disks in slot order.</summary>
    private static void BootIndexes(Context c)
    {
        var order = c.Vm.BootOrder ?? [.. (c.Vm.Disks ?? []).Keys.Order(SlotComparer)];
        for (var i = 0; i < order.Count; i++)
            c.BootIndex[order[i]] = FirstBootIndex + i;
    }

    private static void BootAndKernel(Context c)
    {
        var vm = c.Vm;
        BootIndexes(c);
        // An explicit order is the user's whole list: no silent fallback to other devices. Without one,
        // firmware may still try CD-ROMs and NICs after the disks, which is what a fresh install needs.
        if (vm.BootOrder is not null)
            c.Arg("-boot", "strict=on");

        if (vm.Kernel is { } kernel)
        {
            // -kernel, -initrd and -append take their argument verbatim (no option syntax): no escaping.
            c.Arg("-kernel", c.File(kernel, Attr("kernel"), "kernel"));
            if (vm.Initrd is { } initrd)
                c.Arg("-initrd", c.File(initrd, Attr("initrd"), "initrd"));
            if (vm.Cmdline is { } cmdline)
                c.Arg("-append", c.Safe(cmdline, Attr("cmdline")));
        }
    }

    private static void Process(Context c)
    {
        var paths = c.Paths;
        c.Arg("-pidfile", c.File(paths.PidFile, Attr("vm_id"), "pidfile"));
        var qmp = c.File(paths.QmpSocket, Attr("vm_id"), "QMP socket");
        CheckSocketPath(c, qmp, "QMP socket");
        c.Arg("-chardev", QemuOptions.Of("socket").Add("id", "qmp").Add("path", qmp).Add("server", true).Add("wait", false).ToString());
        c.Arg("-mon", "chardev=qmp,mode=control");
    }

    internal static void CheckSocketPath(Context c, string path, string what)
    {
        var bytes = Encoding.UTF8.GetByteCount(path);
        if (bytes > MaxSocketPathBytes)
            c.Error(Attr("vm_id"), $"the {what} path \"{path}\" is {bytes} bytes long; unix socket paths must be at most {MaxSocketPathBytes} bytes (use a shorter --run-dir).");
    }

    /// <summary>Orders slots by bus name, then by number, so scsi2 comes before scsi10.</summary>
    internal static readonly IComparer<string> SlotComparer = Comparer<string>.Create((a, b) =>
    {
        var (busA, indexA) = ParseSlot(a);
        var (busB, indexB) = ParseSlot(b);
        var byBus = string.CompareOrdinal(busA, busB);
        return byBus != 0 ? byBus : indexA.CompareTo(indexB);
    });

    /// <summary>Splits <c>scsi12</c> into <c>("scsi", 12)</c>.</summary>
    internal static (string Bus, int Index) ParseSlot(string slot)
    {
        var digits = slot.Length;
        while (digits > 0 && char.IsAsciiDigit(slot[digits - 1]))
            digits--;
        var index = digits < slot.Length ? int.Parse(slot.AsSpan(digits), System.Globalization.CultureInfo.InvariantCulture) : -1;
        return (slot[..digits], index);
    }
}
