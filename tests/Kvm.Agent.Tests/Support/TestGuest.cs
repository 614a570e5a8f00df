namespace Kvm.Agent.Tests.Support;

/// <summary>
/// The test guest scripts/test builds (a Debian cloud kernel and a busybox initramfs that prints
/// KVM-TEST-GUEST-BOOTED on its serial console, then powers off with <c>kvmtest=poweroff</c>).
/// </summary>
public static class TestGuest
{
    public static string Kernel => Find("KVM_TEST_KERNEL", "vmlinuz");

    public static string Initrd => Find("KVM_TEST_INITRD", "initrd.img");

    /// <summary>
    /// A headless VM that boots the test guest with a unique name from <paramref name="prefix"/>; it stays up unless
    /// <paramref name="cmdline"/> asks for <c>kvmtest=poweroff</c>. Each test adds the disks and devices it proves.
    /// </summary>
    public static Kvm.Model.VmSpec Spec(string prefix, int memoryMib = 256, string cmdline = "console=ttyS0 panic=-1") => new()
    {
        Name = Specs.UniqueName(prefix),
        Memory = new Kvm.Model.MemorySpec { SizeMib = memoryMib },
        Display = new Kvm.Model.DisplaySpec { Vga = "none", Vnc = false },
        Kernel = Kernel,
        Initrd = Initrd,
        Cmdline = cmdline,
    };

    private static string Find(string variable, string file)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } path && File.Exists(path))
            return path;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".work", "guest", file);
            if (File.Exists(candidate))
                return candidate;
        }
        throw new InvalidOperationException($"The test guest's {file} is missing: run scripts/test, which builds it (or set {variable}).");
    }
}
