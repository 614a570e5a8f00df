using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Tests.Shared;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// The engine's full call sequences against a real kvm-agent (research/pulumi.md §4): preview, up
/// with create, update in place, replace create-before-delete and delete-before-replace, refresh
/// with drift, destroy and import. The plugin is the real binary; the agent is reached through
/// AgentBackend (Kvm.Client), on a real kvm-agent this class starts (TCG).
/// </summary>
public sealed class AgentLifecycleTests(AgentLifecycleTests.Agent agent) : IClassFixture<AgentLifecycleTests.Agent>
{
    /// <summary>One real agent for the class; disposing it deletes what the tests left and stops it.</summary>
    public sealed class Agent : IAsyncLifetime
    {
        public AgentProcess Process { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            var root = new DirectoryInfo(AppContext.BaseDirectory);
            while (!File.Exists(Path.Combine(root.FullName, "Provider.sln")))
                root = root.Parent ?? throw new InvalidOperationException("Provider.sln not found above the test binaries.");
            Process = await AgentProcess.StartAsync(root.FullName);
        }

        public Task DisposeAsync()
        {
            Process.Dispose();
            return Task.CompletedTask;
        }
    }

    private const string VolumeToken = "kvm:index/volume:Volume";
    private const string VmToken = "kvm:index/vm:Vm";

    private static Struct Parse(string json) => StructCodecTests.Parse(json);

    private async Task<EngineSession> ConfiguredSessionAsync()
    {
        var session = await EngineSession.StartAsync();
        await session.ConfigureAsync(EngineSession.Config(agent.Process.Endpoint, agent.Process.Token));
        return session;
    }

    /// <summary>What the engine keeps per resource between steps.</summary>
    private sealed record Stored(string Id, Struct Outputs, Struct Inputs);

    private static async Task<Stored> UpAsync(EngineSession session, string token, string name, Stored? old, Struct program)
    {
        var check = await session.CheckAsync(token, name, old?.Inputs, program);
        Assert.Empty(check.Failures);
        if (old is null)
        {
            var preview = await session.CreateAsync(token, name, check.Inputs, preview: true);
            Assert.Equal("", preview.Id);
            var created = await session.CreateAsync(token, name, check.Inputs, preview: false);
            Assert.NotEqual("", created.Id);
            return new Stored(created.Id, created.Properties, check.Inputs);
        }
        var diff = await session.DiffAsync(token, name, old.Id, old.Outputs, old.Inputs, check.Inputs);
        if (diff.Changes == DiffResponse.Types.DiffChanges.DiffNone)
            return old with { Inputs = check.Inputs };
        Assert.Empty(diff.Replaces);
        await session.UpdateAsync(token, name, old.Id, old.Outputs, old.Inputs, check.Inputs, preview: true);
        var updated = await session.UpdateAsync(token, name, old.Id, old.Outputs, old.Inputs, check.Inputs, preview: false);
        return new Stored(old.Id, updated.Properties, check.Inputs);
    }

    private static async Task<Stored> ReplaceAsync(EngineSession session, string token, string name, Stored old, Struct program, bool expectDeleteFirst)
    {
        var check = await session.CheckAsync(token, name, old.Inputs, program);
        Assert.Empty(check.Failures);
        var diff = await session.DiffAsync(token, name, old.Id, old.Outputs, old.Inputs, check.Inputs);
        Assert.NotEmpty(diff.Replaces);
        Assert.Equal(expectDeleteFirst, diff.DeleteBeforeReplace);
        var recheck = await session.CheckAsync(token, name, null, program);
        await session.CreateAsync(token, name, recheck.Inputs, preview: true);
        if (diff.DeleteBeforeReplace)
            await session.DeleteAsync(token, name, old.Id, old.Outputs, old.Inputs);
        var created = await session.CreateAsync(token, name, recheck.Inputs, preview: false);
        if (!diff.DeleteBeforeReplace)
            await session.DeleteAsync(token, name, old.Id, old.Outputs, old.Inputs);
        return new Stored(created.Id, created.Properties, recheck.Inputs);
    }

    private static async Task AssertGoneAsync(EngineSession session, string token, string name, Stored stored)
    {
        var read = await session.ReadAsync(token, name, stored.Id, stored.Outputs, stored.Inputs);
        Assert.Equal("", read.Id);
    }

    [Fact]
    public async Task VolumeLifecycle()
    {
        await using var session = await ConfiguredSessionAsync();
        var name = $"pulumi-{Guid.NewGuid():N}"[..20] + ".qcow2";
        var volume = await UpAsync(session, VolumeToken, "data", null, Parse($$"""{"name":"{{name}}","sizeGib":1}"""));
        Assert.Equal($"default/{name}", volume.Id);

        // Same program again: nothing to do.
        Assert.Same(volume.Outputs, (await UpAsync(session, VolumeToken, "data", volume, Parse($$"""{"name":"{{name}}","sizeGib":1}"""))).Outputs);

        // Grow in place.
        volume = await UpAsync(session, VolumeToken, "data", volume, Parse($$"""{"name":"{{name}}","sizeGib":2}"""));
        Assert.Equal(2d, volume.Outputs.Fields["sizeGib"].NumberValue);

        // A create-only change that keeps the name: the old volume must go first.
        volume = await ReplaceAsync(session, VolumeToken, "data", volume, Parse($$"""{"name":"{{name}}","sizeGib":2,"format":"raw"}"""), expectDeleteFirst: true);

        // A new name: the replacement is created before the old one is deleted.
        var renamed = "b" + name;
        var old = volume;
        volume = await ReplaceAsync(session, VolumeToken, "data", volume, Parse($$"""{"name":"{{renamed}}","sizeGib":2,"format":"raw"}"""), expectDeleteFirst: false);
        await AssertGoneAsync(session, VolumeToken, "data", old);

        // Import by id: the read inputs match the program, so there is no diff.
        var imported = await session.ReadAsync(VolumeToken, "data", volume.Id, null, null);
        Assert.Equal(volume.Id, imported.Id);
        var check = await session.CheckAsync(VolumeToken, "data", imported.Inputs, Parse($$"""{"name":"{{renamed}}","sizeGib":2,"format":"raw"}"""));
        var diff = await session.DiffAsync(VolumeToken, "data", imported.Id, imported.Properties, imported.Inputs, check.Inputs);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffNone, diff.Changes);

        // Destroy.
        await session.DeleteAsync(VolumeToken, "data", volume.Id, volume.Outputs, volume.Inputs);
        await AssertGoneAsync(session, VolumeToken, "data", volume);
    }

    [Fact]
    public async Task VmLifecycleWithRefreshDriftAndImport()
    {
        await using var session = await ConfiguredSessionAsync();
        var name = $"pulumi-{Guid.NewGuid():N}"[..16];
        string Program(int memory, string description) => $$"""
            {"name":"{{name}}","powerState":"stopped","description":"{{description}}","memory":{"sizeMib":{{memory}}},
             "disks":{"scsi0":{"sizeGib":1} },"networkInterfaces":{"net0":{"model":"virtio"} } }
            """;

        var vm = await UpAsync(session, VmToken, "web", null, Parse(Program(256, "one")));
        Assert.Equal(vm.Id, vm.Outputs.Fields["vmId"].NumberValue.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("stopped", vm.Outputs.Fields["status"].StringValue);

        // Update in place (memory is stored for the next start; the VM is stopped).
        vm = await UpAsync(session, VmToken, "web", vm, Parse(Program(512, "one")));
        Assert.Equal(512d, vm.Outputs.Fields["memory"].StructValue.Fields["sizeMib"].NumberValue);

        // Drift: someone else changes the VM; refresh reads it back and the engine's Diff shows it.
        var changedElsewhere = await session.CheckAsync(VmToken, "web", vm.Inputs, Parse(Program(512, "changed elsewhere")));
        await session.UpdateAsync(VmToken, "web", vm.Id, vm.Outputs, vm.Inputs, changedElsewhere.Inputs, preview: false);
        var refreshed = await session.ReadAsync(VmToken, "web", vm.Id, vm.Outputs, vm.Inputs);
        Assert.Equal("changed elsewhere", refreshed.Properties.Fields["description"].StringValue);
        Assert.False(refreshed.Inputs.Fields.ContainsKey("vmId"));
        var drift = await session.DiffAsync(VmToken, "web", vm.Id, refreshed.Properties, refreshed.Inputs, vm.Inputs);
        Assert.Equal(["description"], drift.Diffs);
        vm = new Stored(refreshed.Id, refreshed.Properties, refreshed.Inputs);

        // Import with host/vm_id form (default host: no prefix) and compare with the program.
        var imported = await session.ReadAsync(VmToken, "web", vm.Id, null, null);
        var check = await session.CheckAsync(VmToken, "web", imported.Inputs, Parse(Program(512, "changed elsewhere")));
        Assert.Empty(check.Failures);
        var diff = await session.DiffAsync(VmToken, "web", imported.Id, imported.Properties, imported.Inputs, check.Inputs);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffNone, diff.Changes);

        // Replace with the same name: delete first.
        vm = await ReplaceAsync(session, VmToken, "web", vm, Parse(Program(512, "changed elsewhere").Replace("\"sizeGib\":1", "\"sizeGib\":1,\"format\":\"raw\"", StringComparison.Ordinal)), expectDeleteFirst: true);

        // Destroy.
        await session.DeleteAsync(VmToken, "web", vm.Id, vm.Outputs, vm.Inputs);
        await AssertGoneAsync(session, VmToken, "web", vm);
    }
}
