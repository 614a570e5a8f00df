using Kvm.Model;
using Kvm.Tests.Shared;

namespace Kvm.Agent.Tests.GuestAgent;

/// <summary>The real Debian test guest (<see cref="DebianGuestFiles"/>), found from this test assembly's repository.</summary>
public static class DebianGuest
{
    private static DebianGuestFiles Files => DebianGuestFiles.Find(RepoRoot);

    public static string Disk => Files.Disk;
    public static string Kernel => Files.Kernel;
    public static string Initrd => Files.Initrd;
    public static string Cmdline => Files.Cmdline;

    /// <summary>
    /// A VM that boots the guest under TCG: direct kernel boot, a linked clone of <paramref name="imageId"/> as virtio0,
    /// one user-mode NIC, no display. Tests add what they prove (guest agent, shares, cloud-init).
    /// </summary>
    public static VmSpec Spec(string name, string imageId) => new()
    {
        Name = name,
        Kvm = false,
        Cpu = new CpuSpec { Cores = 2 },
        Memory = new MemorySpec { SizeMib = 1024 },
        Display = new DisplaySpec { Vga = "none", Vnc = false },
        Kernel = Kernel,
        Initrd = Initrd,
        Cmdline = Cmdline,
        Disks = new() { ["virtio0"] = new DiskSpec { ImageId = imageId, LinkedClone = true } },
        NetworkInterfaces = new() { ["net0"] = new NicSpec() },
    };

    /// <summary>The repository root (where Provider.sln is).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Provider.sln")))
                    return dir.FullName;
            throw new InvalidOperationException("Provider.sln not found above " + AppContext.BaseDirectory);
        }
    }
}
