using Kvm.Model.Validation;

namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>x86 machines without an interrupt-remapping IOMMU address at most this many vCPUs (8-bit APIC IDs).</summary>
    internal const int MaxVcpus = 255;

    // Enlightenments Proxmox enables for Windows 7 and later on current machine types: paravirtual clock,
    // APIC, spinlocks, synthetic timers and IPIs. Each needs the ones listed before it that it depends on.
    private static readonly (string Name, string Value)[] HyperVFlags =
    [
        ("hv-relaxed", "on"), ("hv-vapic", "on"), ("hv-spinlocks", "0x1fff"), ("hv-time", "on"), ("hv-reset", "on"),
        ("hv-vpindex", "on"), ("hv-runtime", "on"), ("hv-synic", "on"), ("hv-stimer", "on"), ("hv-ipi", "on"),
    ];

    private static void Cpu(Context c)
    {
        var cpu = c.Vm.Cpu!;
        var at = Attr("cpu");
        int sockets = cpu.Sockets!.Value, cores = cpu.Cores!.Value, threads = cpu.Threads!.Value;
        var total = sockets * cores * threads;
        if (total > MaxVcpus)
            c.Error(at, $"{sockets} sockets × {cores} cores × {threads} threads = {total} vCPUs; QEMU's x86 machines take at most {MaxVcpus}.");
        else if (total > c.Facts.CpuCores)
            c.Error(at, $"{total} vCPUs is more than this host's {c.Facts.CpuCores} logical CPUs.");

        var name = cpu.Model!;
        var model = name;
        var flags = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (ProxmoxCpuModels.TryGet(name, out var level))
        {
            model = level.BaseModel;
            foreach (var flag in level.Flags)
                flags[flag] = "on";
        }
        if (model == "host" && !c.Kvm)
            c.Error(at.Attr("model"), "\"host\" passes the host CPU through and needs KVM; under TCG use \"max\" or a named model.");
        else if (model != "host" && c.Facts.CpuModels.Count > 0 && !c.Facts.CpuModels.Contains(model, StringComparer.Ordinal))
            c.Error(at.Attr("model"), $"\"{Validator.Printable(name)}\" is not a CPU model of this host's QEMU {c.Facts.QemuVersion} (see kvm_host.cpu_models).");

        // Proxmox's fixed additions: kvm64 lacks two flags Windows 8+ needs; under KVM, paravirtual
        // spinlocks and EOI help every Linux guest.
        if (model == "kvm64")
            flags["lahf-lm"] = flags["sep"] = "on";
        if (c.Kvm)
        {
            flags["kvm-pv-unhalt"] = flags["kvm-pv-eoi"] = "on";
            if (c.Windows)
                foreach (var (flag, value) in HyperVFlags)
                    flags[flag] = value;
        }
        // Every CPU with AES-NI has PCLMULQDQ, and Linux's aesni_intel uses it without asking CPUID. Under KVM the
        // host CPU runs it either way; TCG honours CPUID and faults (an oops in aesni_gcm_init, a hung module load).
        if (!c.Kvm && flags.GetValueOrDefault("aes") == "on")
            flags["pclmulqdq"] = "on";
        CpuControls(c, flags);
        foreach (var flag in cpu.Flags ?? [])
            flags[flag[1..].Replace('_', '-')] = flag[0] == '+' ? "on" : "off";
        // Under KVM a model must mean the same CPU on every host: fail instead of silently dropping
        // features the host lacks. "host" is by definition whatever the host has.
        if (c.Kvm && model != "host")
            flags["enforce"] = "on";

        var option = QemuOptions.Of(model);
        foreach (var (flag, value) in flags)
            option.Add(flag, value);
        c.Arg("-cpu", option.ToString());
        c.Arg("-smp", QemuOptions.Of("cpus=" + (cpu.Vcpus ?? total)).Add("sockets", sockets).Add("cores", cores).Add("threads", threads).Add("maxcpus", total).ToString());
    }
}
