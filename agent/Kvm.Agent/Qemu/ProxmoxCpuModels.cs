namespace Kvm.Agent.Qemu;

/// <summary>
/// Proxmox's built-in x86-64 micro-architecture levels. QEMU 7.2 has no CPU models of these names;
/// Proxmox (qemu-server, CPUConfig) presents each as <c>qemu64</c> plus the level's feature flags, and so
/// do we, so a VM moved from Proxmox sees the same CPU.
/// </summary>
public static class ProxmoxCpuModels
{
    /// <summary>One level: the QEMU model the guest sees and the flags added to it.</summary>
    public sealed record Model(string Name, string BaseModel, IReadOnlyList<string> Flags);

    private static readonly string[] V2 = ["popcnt", "pni", "sse4.1", "sse4.2", "ssse3"];
    private static readonly string[] V2Aes = ["aes", .. V2];
    private static readonly string[] V3 = [.. V2Aes, "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"];
    private static readonly string[] V4 = [.. V3, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"];

    /// <summary>All levels, lowest first.</summary>
    public static IReadOnlyList<Model> All { get; } =
    [
        new("x86-64-v2", "qemu64", V2),
        new("x86-64-v2-AES", "qemu64", V2Aes),
        new("x86-64-v3", "qemu64", V3),
        new("x86-64-v4", "qemu64", V4),
    ];

    /// <summary>The model names, for the host's list of CPU models.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. All.Select(m => m.Name)];

    /// <summary>Finds a level by name (exact case, as Proxmox spells them).</summary>
    public static bool TryGet(string name, out Model model)
    {
        model = All.FirstOrDefault(m => m.Name == name)!;
        return model is not null;
    }
}
