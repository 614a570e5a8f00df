using Kvm.Cli.Tests.Support;

namespace Kvm.Cli.Tests;

/// <summary>A real guest (the test kernel scripts/test builds) that powers itself off: qm's "start, then wait" pattern.</summary>
public sealed class GuestTests : IAsyncLifetime
{
    private CliAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await CliAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    [Fact]
    public async Task ADirectKernelBootRunsUntilTheGuestPowersOffAndWaitReturns()
    {
        if (TestGuestFiles() is not var (kernel, initrd))
            return; // the test guest is built by scripts/test; without it there is no guest code to run
        var created = await _agent.RunAsync("create", "310", "--name", "guest", "--memory", "256", "--vga", "none",
            "--kernel", kernel, "--initrd", initrd, "--append", "console=ttyS0 panic=-1 kvmtest=poweroff", "--disk", "virtio0=1G", "--start");
        Assert.True(created.ExitCode == 0, created.ToString());
        Assert.Contains("status: running", created.Stdout, StringComparison.Ordinal);

        var waited = await _agent.RunAsync("wait", "310", "--timeout", "600");
        Assert.True(waited.ExitCode == 0, waited.ToString());
        var serialLog = (await _agent.Client.GetVmAsync(310)).Value.SerialLog!;
        Assert.Contains("KVM-TEST-GUEST-BOOTED", await File.ReadAllTextAsync(serialLog), StringComparison.Ordinal);
        Assert.Equal("status: stopped\n", (await _agent.RunAsync("status", "310")).Stdout);
        Assert.Equal(0, (await _agent.RunAsync("destroy", "310")).ExitCode);
    }

    private static (string Kernel, string Initrd)? TestGuestFiles()
    {
        if (Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") is { Length: > 0 } k && Environment.GetEnvironmentVariable("KVM_TEST_INITRD") is { Length: > 0 } i
            && File.Exists(k) && File.Exists(i))
            return (k, i);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var guest = Path.Combine(dir.FullName, ".work", "guest");
            if (File.Exists(Path.Combine(guest, "vmlinuz")) && File.Exists(Path.Combine(guest, "initrd.img")))
                return (Path.Combine(guest, "vmlinuz"), Path.Combine(guest, "initrd.img"));
        }
        return null;
    }
}
