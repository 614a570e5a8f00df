using Kvm.Agent.Vms;
using Kvm.Model;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>
/// The virtiofsd argv for both daemons. QEMU's C daemon runs in VirtiofsTests and VirtiofsDebianTests; the Rust daemon
/// (Debian's virtiofsd package) is not installable on this machine, so its argv is pinned here only.
/// </summary>
public sealed class VirtiofsdArgvTests
{
    private static SharedDirSpec Share(bool readOnly, bool xattr, string cache) => new() { Path = "/srv/a,b", ReadOnly = readOnly, Xattr = xattr, Cache = cache };

    [Fact]
    public void The_C_daemon_gets_o_options_and_none_for_never()
    {
        Assert.Equal(["/usr/lib/qemu/virtiofsd", "--socket-path=/run/kvm/100/virtiofs0.sock", "-o", "source=/srv/a,b", "-o", "cache=none", "-o", "xattr", "-o", "sandbox=chroot"],
            VirtiofsDaemons.Argv("/usr/lib/qemu/virtiofsd", Share(false, true, "never"), "/run/kvm/100/virtiofs0.sock"));
        Assert.False(VirtiofsDaemons.IsRust("/usr/lib/qemu/virtiofsd"));
    }

    [Fact]
    public void The_Rust_daemon_gets_long_options_and_can_share_read_only()
    {
        Assert.Equal(["/usr/libexec/virtiofsd", "--socket-path", "/run/kvm/100/virtiofs1.sock", "--shared-dir", "/srv/a,b", "--cache", "never", "--sandbox", "chroot", "--readonly"],
            VirtiofsDaemons.Argv("/usr/libexec/virtiofsd", Share(true, false, "never"), "/run/kvm/100/virtiofs1.sock"));
        Assert.True(VirtiofsDaemons.IsRust("/usr/libexec/virtiofsd"));
    }
}
