namespace Kvm.Agent.Qemu;

public static partial class QemuCommand
{
    /// <summary>cpu.affinity within the host's CPUs; cpu.nested: the host's virtualization flag (vmx or svm) when its KVM offers nested virtualization.</summary>
    private static void CpuControls(Context c, SortedDictionary<string, string> flags)
    {
        if (c.Vm.Cpu!.Affinity is { } affinity && Kvm.Model.CpuList.Parse(affinity) is { Count: > 0 } cpus && cpus.Max >= c.Facts.CpuCores)
            c.Error(Attr("cpu").Attr("affinity"), $"CPU {cpus.Max} does not exist: this host has CPUs 0-{c.Facts.CpuCores - 1}.");
        if (c.Vm.Cpu.Nested != true)
            return;
        var at = Attr("cpu").Attr("nested");
        if (!c.Kvm)
            c.Error(at, "nested virtualization needs KVM; this VM runs under TCG (set kvm = true on a host where KVM is usable).");
        else if (c.Facts.NestedVirtualization is not ("vmx" or "svm"))
            c.Error(at, "this host's KVM does not offer nested virtualization: the kvm_intel or kvm_amd module's `nested` parameter is off " +
                "(see kvm_host.nested_virtualization; enable it with `options kvm_intel nested=1` and reload the module).");
        else
            flags[c.Facts.NestedVirtualization] = "on";
    }
}
