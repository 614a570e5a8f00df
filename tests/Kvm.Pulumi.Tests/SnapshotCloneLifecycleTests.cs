using Google.Protobuf.WellKnownTypes;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Tests.Shared;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// kvm:index/snapshot:Snapshot, and a template with a linked clone, through the engine harness and the real plugin against a
/// real kvm-agent: preview, up, no-op preview, in-place description, replacement by name, import, destroy in dependency order.
/// </summary>
public sealed class SnapshotCloneLifecycleTests : IAsyncLifetime
{
    private const string SnapshotToken = "kvm:index/snapshot:Snapshot";
    private const string VmToken = "kvm:index/vm:Vm";

    private AgentProcess _agent = null!;

    public async Task InitializeAsync() => _agent = await AgentProcess.StartAsync(Repo.Root);

    public Task DisposeAsync()
    {
        _agent.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task ASnapshotAndALinkedCloneOfATemplateGoThroughTheirLifecycle()
    {
        var suffix = Guid.NewGuid().ToString("N")[..6];
        var description = "one";
        var snapshotName = "first";
        var template = new Goal(VmToken, "tpl", _ => StructCodecTests.Parse($$"""
            {"name":"tpl-{{suffix}}","template":true,"memory":{"sizeMib":64},"disks":{"scsi0":{"sizeGib":1} } }
            """));
        var clone = new Goal(VmToken, "clone", outputs =>
        {
            var inputs = StructCodecTests.Parse($$"""
                {"name":"clone-{{suffix}}","powerState":"stopped","memory":{"sizeMib":64},"disks":{"scsi0":{"sizeGib":1} },"clone":{} }
                """);
            inputs.Fields["clone"].StructValue.Fields["sourceVmId"] = outputs("tpl", "vmId");
            return inputs;
        });
        Goal Snapshot() => new(SnapshotToken, "snap", outputs =>
        {
            var inputs = StructCodecTests.Parse($$"""{"name":"{{snapshotName}}","description":"{{description}}"}""");
            inputs.Fields["vmId"] = outputs("clone", "vmId");
            return inputs;
        });

        await using var session = await EngineSession.StartAsync();
        await session.ConfigureAsync(EngineSession.Config(_agent.Endpoint, _agent.Token));
        var deployment = new Deployment(session);

        Assert.Equal(["create", "create", "create"], (await deployment.PreviewAsync([template, clone, Snapshot()])).Select(s => s.Op));
        await deployment.UpAsync([template, clone, Snapshot()]);
        var templateId = long.Parse(deployment["tpl"].Id, System.Globalization.CultureInfo.InvariantCulture);
        var cloneId = long.Parse(deployment["clone"].Id, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"{cloneId}/first", deployment["snap"].Id);
        Assert.Equal("stopped", deployment["snap"].Outputs.Fields["vmStatus"].StringValue);
        Assert.Equal("first", (await _agent.Client.GetSnapshotAsync(cloneId, "first")).Value.Name);
        Assert.Equal(templateId, (await _agent.Client.GetVmAsync(cloneId)).Value.Clone!.SourceVmId);
        Assert.Equal(["same", "same", "same"], (await deployment.PreviewAsync([template, clone, Snapshot()])).Select(s => s.Op));

        // In place: the description. A new name replaces the snapshot.
        description = "two";
        Assert.Equal(["same", "same", "update"], (await deployment.UpAsync([template, clone, Snapshot()])).Select(s => s.Op));
        Assert.Equal("two", (await _agent.Client.GetSnapshotAsync(cloneId, "first")).Value.Description);
        snapshotName = "second";
        var steps = await deployment.UpAsync([template, clone, Snapshot()]);
        Assert.Contains("replace", steps.Select(s => s.Op));
        Assert.Equal(["second"], (await _agent.Client.ListSnapshotsAsync(cloneId)).Select(s => s.Name));

        // Import into a fresh stack by id: no diff.
        var imported = new Deployment(session);
        await imported.UpAsync([template with { ImportId = templateId.ToString(System.Globalization.CultureInfo.InvariantCulture) }, clone with { ImportId = cloneId.ToString(System.Globalization.CultureInfo.InvariantCulture) }, Snapshot() with { ImportId = $"{cloneId}/second" }]);
        Assert.Contains("Read snap", imported.Calls);

        await deployment.DestroyAsync();
        Assert.Equal(["snap", "clone", "tpl"], deployment.Steps.Select(s => s.Resource));
        Assert.Empty(await _agent.Client.ListVmsAsync());
    }
}
