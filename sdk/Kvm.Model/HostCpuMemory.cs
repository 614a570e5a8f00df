using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>Host facts for the CPU and memory controls: nested virtualization, hugepages, KSM.</summary>
public sealed partial class HostInfo
{
    /// <summary>Nested virtualization.</summary>
    [Setting("Whether the host's KVM offers nested virtualization (kvm_intel/kvm_amd `nested` on), which `cpu.nested` needs.", ReadOnly = true)]
    public bool? NestedVirtualization { get; set; }

    /// <summary>Hugepage sizes.</summary>
    [Setting("Hugepage sizes in MiB with a hugetlbfs mount (`2`, `1024`), usable by `memory.hugepages`.", ReadOnly = true)]
    public List<long>? HugepageSizesMib { get; set; }

    /// <summary>KSM running.</summary>
    [Setting("Whether kernel samepage merging (KSM) runs (/sys/kernel/mm/ksm/run = 1); null when the kernel has no KSM.", ReadOnly = true)]
    public bool? KsmRunning { get; set; }

    /// <summary>KSM pages shared.</summary>
    [Setting("KSM: shared pages in use (pages_shared); null without KSM.", ReadOnly = true)]
    public long? KsmPagesShared { get; set; }

    /// <summary>KSM pages sharing.</summary>
    [Setting("KSM: how many more sites share them, i.e. pages saved (pages_sharing); null without KSM.", ReadOnly = true)]
    public long? KsmPagesSharing { get; set; }
}
