using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Provider;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Tests;

/// <summary>One plugin process, configured like a default provider, shared by the protocol tests.</summary>
public sealed class ConfiguredPlugin : IAsyncLifetime
{
    /// <summary>Nothing listens here: calls that reach for the agent fail, as they should without one.</summary>
    public const string UnreachableEndpoint = "http://127.0.0.1:9";

    internal EngineSession Session { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Session = await EngineSession.StartAsync(new Dictionary<string, string?> { ["KVM_ENDPOINT"] = null, ["KVM_TOKEN"] = null });
        await Session.ConfigureAsync(EngineSession.Config(UnreachableEndpoint, "t0ken"));
    }

    public async Task DisposeAsync() => await Session.DisposeAsync();
}

public class PluginProtocolTests(ConfiguredPlugin fixture) : IClassFixture<ConfiguredPlugin>
{
    private const string VmToken = "kvm:index/vm:Vm";
    private EngineSession Session => fixture.Session;

    private static Struct Parse(string json) => StructCodecTests.Parse(json);

    [Fact]
    public async Task HandshakeAcceptsSecretsAndResourcesAndPluginInfoHasTheSchemaVersion()
    {
        var handshake = await Session.Plugin.HandshakeAsync(Session.Engine.Address);
        Assert.True(handshake.AcceptSecrets);
        Assert.True(handshake.AcceptResources);
        Assert.False(handshake.AcceptOutputs);
        var info = await Session.Plugin.CallAsync("GetPluginInfo", new Empty(), PluginInfo.Parser);
        Assert.Equal(Schema.PulumiSchema.Version, info.Version);
    }

    [Fact]
    public async Task GetSchemaServesTheCommittedSchemaJson()
    {
        var response = await Session.Plugin.CallAsync("GetSchema", new GetSchemaRequest(), GetSchemaResponse.Parser);
        Assert.Equal(File.ReadAllText(Repo.PathOf("sdk", "Kvm.Pulumi", "schema.json")), response.Schema);
    }

    [Fact]
    public async Task CheckConfigDecodesStringValuesByTypeAndReportsBadUrls()
    {
        var config = new Struct();
        config.Fields["endpoint"] = Value.ForString("ftp://x");
        config.Fields["hosts"] = Value.ForString("""{"lab-01":"http://10.0.0.1:8680","lab-02":"nope"}""");
        config.Fields["version"] = Value.ForString("0.1.0");
        var response = await Session.Plugin.CallAsync("CheckConfig", new CheckRequest { Urn = EngineSession.ProviderUrn, News = config }, CheckResponse.Parser);
        Assert.Equal(config, response.Inputs);
        Assert.Equal(["endpoint", "hosts[\"lab-02\"]"], response.Failures.Select(f => f.Property).Order());
    }

    [Fact]
    public async Task DiffConfigSaysNoneExplicitlyAndNeverReplaces()
    {
        var old = EngineSession.Config("http://a:8680");
        var same = await Session.Plugin.CallAsync("DiffConfig", new DiffRequest { Urn = EngineSession.ProviderUrn, Olds = old, OldInputs = old, News = old }, DiffResponse.Parser);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffNone, same.Changes);
        var moved = await Session.Plugin.CallAsync("DiffConfig", new DiffRequest { Urn = EngineSession.ProviderUrn, Olds = old, OldInputs = old, News = EngineSession.Config("http://b:8680") }, DiffResponse.Parser);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffSome, moved.Changes);
        Assert.Equal(["endpoint"], moved.Diffs);
        Assert.Empty(moved.Replaces);
        Assert.Equal(PropertyDiff.Types.Kind.Update, moved.DetailedDiff["endpoint"].Kind);
    }

    [Fact]
    public async Task CheckReturnsTheInputsUntouchedAndFailuresWithPropertyPaths()
    {
        var news = Parse("""{"name":"web","memory":{"sizeMib":8},"networkInterfaces":{"net0":{"model":"virtio","mac":"01:00:00:00:00:01"}}}""");
        var response = await Session.CheckAsync(VmToken, "web", null, news);
        Assert.Equal(news, response.Inputs);
        Assert.Equal(["memory.sizeMib", "networkInterfaces[\"net0\"].mac"], response.Failures.Select(f => f.Property).Order());
        Assert.Empty((await Session.CheckAsync(VmToken, "web", null, Parse("""{"name":"web"}"""))).Failures);
    }

    [Fact]
    public async Task DiffReportsReplacementsDetailedKindsAndDeleteBeforeReplace()
    {
        var outputs = Parse("""{"vmId":100,"name":"web","disks":{"scsi0":{"sizeGib":10}},"status":"running"}""");
        var inputs = Parse("""{"name":"web","disks":{"scsi0":{"sizeGib":10}}}""");
        var none = await Session.DiffAsync(VmToken, "web", "100", outputs, inputs, inputs);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffNone, none.Changes);

        var news = Parse("""{"name":"web","disks":{"scsi0":{"sizeGib":20,"format":"raw"}}}""");
        var diff = await Session.DiffAsync(VmToken, "web", "100", outputs, inputs, news);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffSome, diff.Changes);
        Assert.Equal(["disks"], diff.Replaces);
        Assert.Equal(["disks"], diff.Diffs);
        Assert.True(diff.HasDetailedDiff);
        Assert.True(diff.DeleteBeforeReplace);
        Assert.Equal(PropertyDiff.Types.Kind.AddReplace, diff.DetailedDiff["disks[\"scsi0\"].format"].Kind);
        Assert.Equal(PropertyDiff.Types.Kind.Update, diff.DetailedDiff["disks[\"scsi0\"].sizeGib"].Kind);
    }

    [Fact]
    public async Task APreviewCreateReturnsUnknownsForAgentValuesAndNoId()
    {
        var response = await Session.CreateAsync(VmToken, "web", Parse("""{"name":"web","memory":{"sizeMib":1024}}"""), preview: true);
        Assert.Equal("", response.Id);
        Assert.Equal("web", response.Properties.Fields["name"].StringValue);
        Assert.Equal(1024d, response.Properties.Fields["memory"].StructValue.Fields["sizeMib"].NumberValue);
        Assert.Equal(Sentinels.Unknown, response.Properties.Fields["vmId"].StringValue);
        Assert.Equal(Sentinels.Unknown, response.Properties.Fields["status"].StringValue);
    }

    [Fact]
    public async Task APreviewUpdateKeepsReportedValues()
    {
        var outputs = Parse("""{"vmId":100,"name":"web","status":"running"}""");
        var response = await Session.UpdateAsync(VmToken, "web", "100", outputs, Parse("""{"name":"web"}"""), Parse("""{"name":"web","description":"d"}"""), preview: true);
        Assert.Equal("running", response.Properties.Fields["status"].StringValue);
        Assert.Equal(100d, response.Properties.Fields["vmId"].NumberValue);
        Assert.Equal("d", response.Properties.Fields["description"].StringValue);
    }

    [Fact]
    public async Task ARealCreateWithoutAReachableAgentFailsSayingNothingHappened()
    {
        var error = await Assert.ThrowsAsync<GrpcException>(() => Session.CreateAsync(VmToken, "web", Parse("""{"name":"web"}"""), preview: false));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task InvokeChecksItsArguments()
    {
        var response = await Session.Plugin.CallAsync("Invoke", new InvokeRequest { Tok = "kvm:index/getVm:getVm", Args = Parse("""{"vmId":1.5}""") }, InvokeResponse.Parser);
        Assert.Equal(["vmId", "vmId"], response.Failures.Select(f => f.Property));
        var unknownFunction = await Assert.ThrowsAsync<GrpcException>(() =>
            Session.Plugin.CallAsync("Invoke", new InvokeRequest { Tok = "kvm:index/getNothing:getNothing", Args = new Struct() }, InvokeResponse.Parser));
        Assert.Equal(StatusCode.InvalidArgument, unknownFunction.StatusCode);
    }

    [Fact]
    public async Task MethodsTheProviderDoesNotOfferAreUnimplemented()
    {
        var error = await Assert.ThrowsAsync<GrpcException>(() =>
            Session.Plugin.CallAsync("Construct", new ConstructRequest(), ConstructResponse.Parser));
        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
        Assert.Empty((await Session.Plugin.CallAsync("GetMapping", new GetMappingRequest { Key = "tf" }, GetMappingResponse.Parser)).Provider);
    }
}

/// <summary>Tests that need a plugin process of their own: configuration errors, Cancel and the shutdown signals.</summary>
public class PluginLifetimeTests
{
    private static readonly Dictionary<string, string?> NoEnvironment = new() { ["KVM_ENDPOINT"] = null, ["KVM_TOKEN"] = null };

    [Fact]
    public async Task ConfigureWithoutAnyAgentNamesTheMissingKey()
    {
        await using var session = await EngineSession.StartAsync(NoEnvironment);
        var error = await Assert.ThrowsAsync<GrpcException>(() => session.Plugin.CallAsync("Configure",
            new ConfigureRequest { Args = new Struct(), AcceptSecrets = true, AcceptResources = true }, ConfigureResponse.Parser));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var missing = error.GetDetail<ConfigureErrorMissingKeys>();
        Assert.NotNull(missing);
        Assert.Equal("kvm:endpoint", Assert.Single(missing.MissingKeys).Name);
    }

    [Fact]
    public async Task ConfigureFallsBackToTheEnvironment()
    {
        await using var session = await EngineSession.StartAsync(new Dictionary<string, string?> { ["KVM_ENDPOINT"] = ConfiguredPlugin.UnreachableEndpoint, ["KVM_TOKEN"] = "t" });
        var response = await session.Plugin.CallAsync("Configure",
            new ConfigureRequest { Args = new Struct(), AcceptSecrets = true, AcceptResources = true }, ConfigureResponse.Parser);
        Assert.True(response.AcceptSecrets);
        Assert.True(response.SupportsPreview);
        Assert.True(response.AcceptResources);
    }

    [Fact]
    public async Task AfterCancelAgentCallsFailFast()
    {
        await using var session = await EngineSession.StartAsync(NoEnvironment);
        await session.ConfigureAsync(EngineSession.Config(ConfiguredPlugin.UnreachableEndpoint));
        await session.Plugin.CallAsync("Cancel", new Empty(), Empty.Parser);
        var error = await Assert.ThrowsAsync<GrpcException>(() => session.CreateAsync("kvm:index/vm:Vm", "web", StructCodecTests.Parse("""{"name":"web"}"""), preview: false));
        Assert.Equal(StatusCode.Cancelled, error.StatusCode);
    }

    [Fact]
    public async Task TheEngineShutdownEndsThePluginBeforeSigkillAndStdoutHeldOnlyThePort()
    {
        await using var engine = await FakeEngine.StartAsync();
        await using var plugin = await PluginProcess.StartAsync(engine.Address);
        await plugin.HandshakeAsync(engine.Address);
        var started = DateTime.UtcNow;
        Assert.True(await plugin.ShutdownAsync(), "the plugin needed SIGKILL");
        Assert.True(DateTime.UtcNow - started < PluginProcess.KillAfter);
        Assert.Equal(0, plugin.ExitCode);
        Assert.Equal("", plugin.StdoutAfterPort);
    }

    [Fact]
    public async Task SigtermAloneEndsThePluginCleanly()
    {
        await using var engine = await FakeEngine.StartAsync();
        await using var plugin = await PluginProcess.StartAsync(engine.Address);
        plugin.SignalGroup("TERM");
        Assert.True(await plugin.WaitForExitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, plugin.ExitCode);
    }

    [Fact]
    public async Task APluginThatIgnoresSigintIsKilledAfterFiveSecondsLikeTheEngineDoes()
    {
        await using var engine = await FakeEngine.StartAsync();
        await using var plugin = await PluginProcess.StartAsync(engine.Address);
        // A stopped process cannot act on SIGINT: the harness must fall back to SIGKILL.
        plugin.SignalGroup("STOP");
        var started = DateTime.UtcNow;
        Assert.False(await plugin.ShutdownAsync());
        Assert.True(plugin.HasExited);
        Assert.True(DateTime.UtcNow - started >= PluginProcess.KillAfter);
    }

    [Fact]
    public async Task MessagesForTheUserGoThroughTheEngineLogService()
    {
        await using var engine = await FakeEngine.StartAsync();
        using var log = EngineLog.To(engine.Address);
        await log.WarningAsync("changes take effect at the VM's next start: memory.sizeMib", "urn:x");
        var message = Assert.Single(engine.Messages);
        Assert.Equal(LogSeverity.Warning, message.Severity);
        Assert.Equal("urn:x", message.Urn);
    }
}
