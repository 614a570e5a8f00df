using Kvm.Cli.Tests.Support;
using Kvm.Model;

namespace Kvm.Cli.Tests;

/// <summary>qm's snapshot verbs as kvmctl has them, end to end against a real agent and real qemu-img.</summary>
public sealed class SnapshotCliTests : IAsyncLifetime
{
    private CliAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await CliAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private async Task<KvmctlResult> Ok(params string[] args)
    {
        var result = await _agent.RunAsync(args);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    [Fact]
    public async Task SnapshotListRollbackDelete()
    {
        await Ok("create", "310", "--name", "snapvm", "--memory", "64", "--disk", "scsi0=1G");
        Assert.Contains("has no snapshots", (await Ok("snapshots", "310")).Stderr, StringComparison.Ordinal);

        Assert.Contains("snapshot clean of VM 310 taken (stopped)", (await Ok("snapshots", "create", "310", "clean", "--description", "fresh")).Stdout, StringComparison.Ordinal);
        await Ok("snapshots", "create", "310", "second");
        var list = (await Ok("snapshots", "310")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^NAME\s+PARENT\s+TAKEN\s+VM\s+MEMORY\s+ALSO\s+DESCRIPTION$", list[0]);
        Assert.Matches(@"^clean\s+\S+\s+stopped\s+fresh$", list[1]);
        Assert.Matches(@"^second\s+clean\s+\S+\s+stopped$", list[2]);

        Assert.Contains("rolled back to clean; it is stopped", (await Ok("snapshots", "rollback", "310", "clean")).Stdout, StringComparison.Ordinal);
        var memory = await _agent.RunAsync(["snapshots", "create", "310", "live", "--memory"]);
        Assert.Equal(4, memory.ExitCode); // conflict: memory needs a running VM
        Assert.Contains("running", memory.Stderr, StringComparison.Ordinal);

        await Ok("snapshots", "delete", "310", "clean");
        Assert.Equal(["second"], (await _agent.Client.ListSnapshotsAsync(310)).Select(s => s.Name));
        await Ok("destroy", "310");
    }
}
