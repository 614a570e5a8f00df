namespace Kvm.Agent.Tests.GuestAgent;

/// <summary>
/// The real Debian test guest scripts/test builds (ensure_debian_guest: debootstrap with the cloud kernel, cloud-init,
/// qemu-guest-agent and OpenSSH): disk.qcow2 plus vmlinuz, initrd.img and cmdline for direct kernel boot.
/// </summary>
public static class DebianGuest
{
    public static string Directory => Find();

    public static string Disk => Path.Combine(Directory, "disk.qcow2");
    public static string Kernel => Path.Combine(Directory, "vmlinuz");
    public static string Initrd => Path.Combine(Directory, "initrd.img");
    public static string Cmdline => File.ReadAllText(Path.Combine(Directory, "cmdline")).Trim();

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

    private static string Find()
    {
        if (Environment.GetEnvironmentVariable("KVM_DEBIAN_GUEST") is { Length: > 0 } dir && File.Exists(Path.Combine(dir, "disk.qcow2")))
            return dir;
        var candidate = Path.Combine(RepoRoot, ".work", "debian-guest");
        if (File.Exists(Path.Combine(candidate, "disk.qcow2")))
            return candidate;
        throw new InvalidOperationException("The Debian test guest is missing: run scripts/test, which builds it (source scripts/lib.sh; ensure_debian_guest), or set KVM_DEBIAN_GUEST.");
    }
}
