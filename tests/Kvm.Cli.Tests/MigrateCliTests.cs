using Kvm.Cli.Tests.Support;

namespace Kvm.Cli.Tests;

/// <summary>qm migrate as kvmctl has it, between two real in-process agents on loopback with real QEMU and qemu-img.</summary>
public sealed class MigrateCliTests : IAsyncLifetime
{
    private CliAgent _source = null!;
    private CliAgent _target = null!;

    public async Task InitializeAsync()
    {
        _source = await CliAgent.StartAsync();
        _target = await CliAgent.StartAsync(); // same token: kvmctl uses the source's for the target by default
    }

    public async Task DisposeAsync()
    {
        await _source.DisposeAsync();
        await _target.DisposeAsync();
    }

    [Fact]
    public async Task AStoppedVmMigratesColdARunningOneNeedsOnlineAndARefusalNamesTheSetting()
    {
        Assert.Equal(0, (await _source.RunAsync("create", "320", "--name", "mover", "--memory", "64", "--disk", "scsi0=1G")).ExitCode);
        var moved = await _source.RunAsync("migrate", "320", _target.Endpoint.ToString(), "--with-local-disks");
        Assert.True(moved.ExitCode == 0, moved.ToString());
        Assert.Contains($"VM 320 migrated to {_target.Endpoint} (cold); it is stopped.", moved.Stdout, StringComparison.Ordinal);
        Assert.Null(await _source.Client.FindVmAsync(320));
        Assert.Equal("mover", (await _target.Client.GetVmAsync(320)).Value.Name);

        // A running VM needs --online (or --restart), as qm wants.
        Assert.Equal(0, (await _target.RunAsync("start", "320")).ExitCode);
        var refused = await _target.RunAsync("migrate", "320", _source.Endpoint.ToString());
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--online", refused.Stderr, StringComparison.Ordinal);
        Assert.Equal("running", (await _target.Client.GetVmAsync(320)).Value.Status);
    }
}
