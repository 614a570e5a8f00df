namespace Kvm.Agent.Qemu;

/// <summary>
/// Every host-side name a VM's QEMU needs, resolved by the agent before it calls the pure builder:
/// files, sockets, taps and MACs. The builder only formats them.
/// </summary>
public sealed record VmPaths
{
    /// <summary>The VM's run directory (short: QMP socket paths must stay under 108 bytes).</summary>
    public required string RunDir { get; init; }
    /// <summary>QMP unix socket.</summary>
    public required string QmpSocket { get; init; }
    /// <summary>QEMU pidfile.</summary>
    public required string PidFile { get; init; }
    /// <summary>File that receives the first serial port.</summary>
    public required string SerialLog { get; init; }
    /// <summary>The VM's own EFI variable store (UEFI only).</summary>
    public string? EfiVars { get; init; }
    /// <summary>The control socket of the VM's swtpm (when the VM has a TPM).</summary>
    public string? TpmSocket { get; init; }
    /// <summary>Disk slot → image file and its format.</summary>
    public IReadOnlyDictionary<string, DiskFile> Disks { get; init; } = new Dictionary<string, DiskFile>();
    /// <summary>CD-ROM slot → ISO file, or null for an empty drive.</summary>
    public IReadOnlyDictionary<string, string?> Cdroms { get; init; } = new Dictionary<string, string?>();
    /// <summary>The cloud-init seed ISO (when the VM has <c>cloud_init</c>).</summary>
    public string? CloudInitSeed { get; init; }
    /// <summary>NIC slot → tap interface (bridged NICs only).</summary>
    public IReadOnlyDictionary<string, string> Taps { get; init; } = new Dictionary<string, string>();
    /// <summary>NIC slot → effective MAC (user-set or generated).</summary>
    public IReadOnlyDictionary<string, string> Macs { get; init; } = new Dictionary<string, string>();
    /// <summary>PCI passthrough slot → the host functions of a device passed whole (<c>01:00</c>), function 0 first.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> PciFunctions { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
}

/// <summary>A resolved disk image, or a host block device (<paramref name="HostDevice"/>; its format is always raw).</summary>
public sealed record DiskFile(string Path, string Format, bool HostDevice = false);
