using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Pulumi.Values;
using Kvm.Tests.Shared;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// cloud_init through the real plugin and a real agent, driven as the engine does: userData and the password are
/// secrets in every output, hold the program's clear value (the agent only answers fingerprints), refresh shows no
/// drift, and a userData change is an update, never a replacement.
/// </summary>
public sealed class CloudInitSecretsTests(AgentLifecycleTests.Agent agent) : IClassFixture<AgentLifecycleTests.Agent>
{
    private const string VmToken = "kvm:index/vm:Vm";

    private static Value Secret(Struct outputs, params string[] path)
    {
        var value = outputs.Fields[path[0]];
        foreach (var step in path.Skip(1))
            value = value.StructValue.Fields[step];
        return value;
    }

    private static string Unwrapped(Value value)
    {
        Assert.Equal(Sentinels.SecretSignature, value.StructValue.Fields[Sentinels.SignatureKey].StringValue);
        return value.StructValue.Fields["value"].StringValue;
    }

    [Fact]
    public async Task CloudInitSecretsStaySecretAndClearInStateAndChangesAreUpdates()
    {
        await using var session = await EngineSession.StartAsync();
        await session.ConfigureAsync(EngineSession.Config(agent.Process.Endpoint, agent.Process.Token));
        var name = $"ci-{Guid.NewGuid():N}"[..12];
        Struct Program(string userData) => StructCodecTests.Parse($$$"""
            {"name":"{{{name}}}","powerState":"stopped","memory":{"sizeMib":64},
             "cloudInit":{"hostname":"web","user":{"name":"ops","password":"pw-1"},"userData":"{{{userData}}}"} }
            """);

        var check = await session.CheckAsync(VmToken, "web", null, Program("#cloud-config\\n"));
        Assert.Empty(check.Failures);
        var created = await session.CreateAsync(VmToken, "web", check.Inputs, preview: false);
        var cloudInit = created.Properties.Fields["cloudInit"];
        // Sensitive values are secret even inside a non-secret object, and hold the program's value.
        var userData = cloudInit.StructValue.Fields["userData"];
        Assert.Equal("#cloud-config\n", Unwrapped(userData));
        Assert.Equal("pw-1", Unwrapped(cloudInit.StructValue.Fields["user"].StructValue.Fields["password"]));
        Assert.StartsWith("sha256:", (await agent.Process.Client.GetVmAsync(long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture))).Value.CloudInit!.UserData, StringComparison.Ordinal);

        // Refresh: the agent's fingerprints match, so outputs keep the clear (secret) values and nothing drifts.
        var refreshed = await session.ReadAsync(VmToken, "web", created.Id, created.Properties, check.Inputs);
        Assert.Equal("#cloud-config\n", Unwrapped(Secret(refreshed.Properties, "cloudInit", "userData")));
        var noDrift = await session.DiffAsync(VmToken, "web", created.Id, refreshed.Properties, refreshed.Inputs, check.Inputs);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffNone, noDrift.Changes);

        // A new userData: an update in place.
        var next = await session.CheckAsync(VmToken, "web", check.Inputs, Program("#cloud-config\\nruncmd: [true]\\n"));
        var diff = await session.DiffAsync(VmToken, "web", created.Id, refreshed.Properties, refreshed.Inputs, next.Inputs);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffSome, diff.Changes);
        Assert.Empty(diff.Replaces);
        Assert.Contains(diff.Diffs, d => d.StartsWith("cloudInit", StringComparison.Ordinal));
        var updated = await session.UpdateAsync(VmToken, "web", created.Id, refreshed.Properties, refreshed.Inputs, next.Inputs, preview: false);
        Assert.Equal("#cloud-config\nruncmd: [true]\n", Unwrapped(Secret(updated.Properties, "cloudInit", "userData")));

        await session.DeleteAsync(VmToken, "web", created.Id, updated.Properties, next.Inputs);
    }
}
