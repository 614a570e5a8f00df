using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Tests.Shared;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// The real plugin driven as the engine drives it, against two real agents (the default host and host "b"): a host change of a
/// VM with migration.enabled is a Diff update, and Update moves the VM (cold here: it is stopped) with its disk.
/// </summary>
public sealed class MigrationLifecycleTests
{
    private const string VmToken = "kvm:index/vm:Vm";

    private static string RepoRoot()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(root.FullName, "Provider.sln")))
            root = root.Parent ?? throw new InvalidOperationException("Provider.sln not found above the test binaries.");
        return root.FullName;
    }

    [Fact]
    public async Task UpdateMovesAVmToTheHostItNamesWhenMigrationIsEnabled()
    {
        var repo = RepoRoot();
        using var a = await AgentProcess.StartAsync(repo);
        using var b = await AgentProcess.StartAsync(repo, a.Token);
        await using var session = await EngineSession.StartAsync();
        var config = EngineSession.Config(a.Endpoint, a.Token);
        config.Fields["hosts"] = Value.ForString($$"""{"b":"{{b.Endpoint}}"}""");
        await session.ConfigureAsync(config);

        var name = $"pulumi-mig-{Guid.NewGuid():N}"[..20];
        string Program(string? host) =>
            "{" + (host is null ? "" : $"\"host\":\"{host}\",") + $$$"""
            "name":"{{{name}}}","powerState":"stopped","memory":{"sizeMib":64},"disks":{"scsi0":{"sizeGib":1}},"migration":{"enabled":true}}
            """;
        var check = await session.CheckAsync(VmToken, "web", null, StructCodecTests.Parse(Program(null)));
        Assert.Empty(check.Failures);
        var created = await session.CreateAsync(VmToken, "web", check.Inputs, preview: false);
        var vmId = long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture);
        Assert.NotNull(await a.Client.FindVmAsync(vmId));

        var moved = await session.CheckAsync(VmToken, "web", check.Inputs, StructCodecTests.Parse(Program("b")));
        var diff = await session.DiffAsync(VmToken, "web", created.Id, created.Properties, check.Inputs, moved.Inputs);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffSome, diff.Changes);
        Assert.Empty(diff.Replaces);
        var updated = await session.UpdateAsync(VmToken, "web", created.Id, created.Properties, check.Inputs, moved.Inputs, preview: false);

        Assert.Equal("b", updated.Properties.Fields["host"].StringValue);
        Assert.Null(await a.Client.FindVmAsync(vmId));
        Assert.Equal(name, (await b.Client.GetVmAsync(vmId)).Value.Name);
        Assert.True(File.Exists(Path.Combine(b.DataDirectory, "pools", "default", $"vm-{vmId}-disk-scsi0.qcow2")));

        // Refresh finds it on "b"; delete removes it there.
        var read = await session.ReadAsync(VmToken, "web", created.Id, updated.Properties, moved.Inputs);
        Assert.Equal(created.Id, read.Id);
        await session.DeleteAsync(VmToken, "web", created.Id, updated.Properties, moved.Inputs);
        Assert.Null(await b.Client.FindVmAsync(vmId));
    }
}
