namespace Kvm.Tests.Shared;

/// <summary>
/// The real Debian test guest scripts/test builds (ensure_debian_guest): disk.qcow2 with cloud-init, qemu-guest-agent
/// and OpenSSH, plus vmlinuz, initrd.img and cmdline for direct kernel boot.
/// </summary>
public sealed record DebianGuestFiles(string Directory)
{
    public string Disk => Path.Combine(Directory, "disk.qcow2");
    public string Kernel => Path.Combine(Directory, "vmlinuz");
    public string Initrd => Path.Combine(Directory, "initrd.img");
    public string Cmdline => File.ReadAllText(Path.Combine(Directory, "cmdline")).Trim();

    public static DebianGuestFiles Find(string repoRoot)
    {
        foreach (var dir in new[] { Environment.GetEnvironmentVariable("KVM_DEBIAN_GUEST"), Path.Combine(repoRoot, ".work", "debian-guest") })
        {
            if (!string.IsNullOrEmpty(dir) && File.Exists(Path.Combine(dir, "disk.qcow2")))
                return new DebianGuestFiles(dir);
        }
        throw new InvalidOperationException("The Debian test guest is missing: run scripts/test, which builds it (source scripts/lib.sh; ensure_debian_guest), or set KVM_DEBIAN_GUEST.");
    }
}
