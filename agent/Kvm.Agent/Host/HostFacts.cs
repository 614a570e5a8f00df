namespace Kvm.Agent.Host;

/// <summary>
/// What the host offers, probed once at start-up and passed into pure code (the QEMU builder,
/// admission) as a parameter, so that code never does I/O and is tested with fixed facts.
/// </summary>
public sealed record HostFacts
{
    /// <summary>qemu-system-x86_64 binary.</summary>
    public required string QemuBinary { get; init; }
    /// <summary>QEMU version (major.minor.micro).</summary>
    public required Version QemuVersion { get; init; }
    /// <summary>/dev/kvm exists and opens.</summary>
    public required bool KvmPresent { get; init; }
    /// <summary>KVM runs guest code at a useful speed (false on nested kvm_pvm hosts).</summary>
    public required bool KvmUsable { get; init; }
    /// <summary>Accelerator for VMs that leave <c>kvm</c> unset: "kvm" or "tcg".</summary>
    public required string DefaultAccelerator { get; init; }
    /// <summary>Logical CPUs.</summary>
    public required int CpuCores { get; init; }
    /// <summary>Total memory in MiB.</summary>
    public required long MemoryMib { get; init; }
    /// <summary>Machine types QEMU lists.</summary>
    public required IReadOnlyList<string> MachineTypes { get; init; }
    /// <summary>CPU models QEMU lists.</summary>
    public required IReadOnlyList<string> CpuModels { get; init; }
    /// <summary>OVMF firmware files found on the host.</summary>
    public required OvmfFiles Ovmf { get; init; }
    /// <summary>"vmx" or "svm" when the host's kvm_intel/kvm_amd module has <c>nested</c> on; null: no nested virtualization.</summary>
    public string? NestedVirtualization { get; init; }
    /// <summary>Host NUMA nodes (/sys/devices/system/node/node*); null when unknown.</summary>
    public int? HostNumaNodes { get; init; }
    /// <summary>Mounted hugetlbfs per page size in MiB ("2", "1024") → mount point.</summary>
    public IReadOnlyDictionary<string, string>? HugepageMounts { get; init; }
}

/// <summary>OVMF code and variable-store templates (null when not installed).</summary>
public sealed record OvmfFiles
{
    /// <summary>4 MiB code, no secure boot.</summary>
    public string? Code4M { get; init; }
    /// <summary>4 MiB empty vars template.</summary>
    public string? Vars4M { get; init; }
    /// <summary>4 MiB secure-boot code (needs SMM).</summary>
    public string? Code4MSecure { get; init; }
    /// <summary>4 MiB vars with distribution and Microsoft keys enrolled.</summary>
    public string? Vars4MEnrolled { get; init; }
    /// <summary>2 MiB code.</summary>
    public string? Code2M { get; init; }
    /// <summary>2 MiB vars.</summary>
    public string? Vars2M { get; init; }
}
