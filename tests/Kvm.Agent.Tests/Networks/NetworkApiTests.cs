using System.Net;
using System.Text.Json;
using Kvm.Agent.Networks;
using Kvm.Agent.Problems;
using Kvm.Agent.Tests.Storage;
using Kvm.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kvm.Agent.Tests.Networks;

public sealed class NetworkApiTests : IAsyncLifetime
{
    private NetworkHarness _h = null!;

    public async Task InitializeAsync() => _h = await NetworkHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private HttpClient Client => _h.Client;

    private static int VlanFiltering(JsonElement link) => link.GetProperty("linkinfo").GetProperty("info_data").GetProperty("vlan_filtering").GetInt32();

    private static bool Up(JsonElement link) => link.GetProperty("flags").EnumerateArray().Any(f => f.GetString() == "UP");

    [Fact]
    public async Task ABridgeIsCreatedUpdatedLiveJoinedByTapsAndDeletedOnceFree()
    {
        var vlan = await _h.VlanFilteringSupportedAsync();
        var created = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks",
            $$"""{"name":"kvmbr0","mtu":1400,"address":"192.168.50.1/24","vlan_filtering":{{(vlan ? "true" : "false")}}}"""))
            .ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.Created);
        Assert.Equal((true, "up", 1400), (created.Owned!.Value, created.State, created.EffectiveMtu!.Value));
        Assert.Null(created.Type);
        var bridge = (await _h.LinkAsync("kvmbr0"))!.Value;
        Assert.Equal(("bridge", 1400, vlan ? 1 : 0, true), (bridge.GetProperty("linkinfo").GetProperty("info_kind").GetString(), bridge.GetProperty("mtu").GetInt32(), VlanFiltering(bridge), Up(bridge)));
        Assert.Equal(["192.168.50.1/24"], await _h.AddressesAsync("kvmbr0"));

        var get = await Client.GetAsync("/v1/networks/kvmbr0");
        var etag = get.Headers.ETag!.Tag;
        var read = await get.ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.OK);
        Assert.Equal(("192.168.50.1/24", 1400, vlan), (read.Address, read.Mtu!.Value, read.VlanFiltering!.Value));

        var updated = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/networks/kvmbr0",
            """{"name":"kvmbr0","mtu":9000,"address":"10.9.0.1/16","vlan_filtering":false}""", etag))
            .ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.OK);
        Assert.Equal(9000, updated.EffectiveMtu);
        bridge = (await _h.LinkAsync("kvmbr0"))!.Value;
        Assert.Equal((9000, 0), (bridge.GetProperty("mtu").GetInt32(), VlanFiltering(bridge)));
        Assert.Equal(["10.9.0.1/16"], await _h.AddressesAsync("kvmbr0"));
        await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/networks/kvmbr0", """{"name":"kvmbr0","mtu":1500}""", etag))
            .ReadProblemAsync(HttpStatusCode.PreconditionFailed, ProblemTypes.StaleEtag);

        await _h.Taps.EnsureTapAsync("tap100i0", "kvmbr0", null, CancellationToken.None);
        var index = (await _h.LinkAsync("tap100i0"))!.Value.GetProperty("ifindex").GetInt32();
        await _h.Taps.EnsureTapAsync("tap100i0", "kvmbr0", null, CancellationToken.None);
        await _h.Taps.EnsureTapAsync("tap100i1", "kvmbr0", 1500, CancellationToken.None);
        var tap0 = (await _h.LinkAsync("tap100i0"))!.Value;
        Assert.Equal((index, "kvmbr0", 9000, true, "tun"), (tap0.GetProperty("ifindex").GetInt32(), tap0.GetProperty("master").GetString(),
            tap0.GetProperty("mtu").GetInt32(), Up(tap0), tap0.GetProperty("linkinfo").GetProperty("info_kind").GetString()));
        var tap1 = (await _h.LinkAsync("tap100i1"))!.Value;
        Assert.Equal(("kvmbr0", 1500), (tap1.GetProperty("master").GetString(), tap1.GetProperty("mtu").GetInt32()));

        var busy = await (await Client.DeleteAsync("/v1/networks/kvmbr0")).ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
        Assert.Contains("tap100i0", busy.Detail, StringComparison.Ordinal);
        Assert.NotNull(await _h.LinkAsync("kvmbr0"));

        await _h.Taps.RemoveTapAsync("tap100i0", CancellationToken.None);
        await _h.Taps.RemoveTapAsync("tap100i0", CancellationToken.None);
        await _h.Taps.RemoveTapAsync("tap100i1", CancellationToken.None);
        Assert.Null(await _h.LinkAsync("tap100i0"));
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/networks/kvmbr0")).StatusCode);
        Assert.Null(await _h.LinkAsync("kvmbr0"));
        await (await Client.GetAsync("/v1/networks/kvmbr0")).ReadProblemAsync(HttpStatusCode.NotFound, ProblemTypes.NotFound);
        Assert.Empty(Directory.EnumerateFiles(_h.Options.DefinitionsDir));
        _h.AssertAllAgentCommandsStayedInTheNamespace();
    }

    [Fact]
    public async Task ReplaceChangesAreRefused()
    {
        await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"kvmbr1"}""");

        var problem = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/networks/kvmbr1", """{"name":"kvmbr1","type":"existing"}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.RequiresReplacement);
        Assert.Equal("type", Assert.Single(problem.Errors!).Attribute);
        var rename = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/networks/kvmbr1", """{"name":"kvmbr2"}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.RequiresReplacement);
        Assert.Equal("name", Assert.Single(rename.Errors!).Attribute);
        Assert.Null(await _h.LinkAsync("kvmbr2"));
    }

    [Fact]
    public async Task AnAdoptedBridgeIsUsedButNeverChangedAndDeleteOnlyForgetsIt()
    {
        await _h.IpAsync("link", "add", "name", "hostbr", "type", "bridge");
        await _h.IpAsync("link", "set", "dev", "hostbr", "mtu", "1450");

        var adopted = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"hostbr","type":"existing"}"""))
            .ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.Created);
        Assert.Equal((false, "down", 1450), (adopted.Owned!.Value, adopted.State, adopted.EffectiveMtu!.Value));
        var problem = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/networks/hostbr", """{"name":"hostbr","type":"existing","mtu":9000}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        Assert.Equal("type", Assert.Single(problem.Errors!).Attribute);

        await _h.Taps.EnsureTapAsync("tap200i0", "hostbr", null, CancellationToken.None);
        Assert.Equal("hostbr", (await _h.LinkAsync("tap200i0"))!.Value.GetProperty("master").GetString());
        await _h.Taps.RemoveTapAsync("tap200i0", CancellationToken.None);

        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/networks/hostbr")).StatusCode);
        var link = (await _h.LinkAsync("hostbr"))!.Value;
        Assert.Equal((1450, false), (link.GetProperty("mtu").GetInt32(), Up(link)));
        var ran = _h.Runner.Calls.Select(c => string.Join(' ', c.Skip(3))).ToList();
        Assert.DoesNotContain(ran, c => c.Contains("dev hostbr", StringComparison.Ordinal) && !c.StartsWith("-j", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AMissingBridgeCannotBeAdopted()
    {
        var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"nobr","type":"existing"}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);

        Assert.Equal("name", Assert.Single(problem.Errors!).Attribute);
        Assert.Null(await _h.LinkAsync("nobr"));
    }

    [Fact]
    public async Task UplinksLoopbackAndOtherInterfacesAreNeverCreatedOverOrAdopted()
    {
        await _h.IpAsync("link", "add", "name", "eth0", "type", "veth", "peer", "name", "eth0peer");
        await _h.IpAsync("link", "add", "name", "veth1", "type", "veth", "peer", "name", "veth1peer");
        await _h.IpAsync("link", "add", "name", "rogue", "type", "bridge");

        foreach (var body in new[]
        {
            """{"name":"eth0"}""", """{"name":"eth0","type":"existing"}""", """{"name":"lo"}""", """{"name":"lo","type":"existing"}""",
            """{"name":"veth1"}""", """{"name":"veth1","type":"existing"}""", """{"name":"enp1s0"}""",
        })
        {
            var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", body)).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
            Assert.Equal("name", Assert.Single(problem.Errors!).Attribute);
        }
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"rogue"}""")).ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);

        var e = await Assert.ThrowsAsync<AgentProblemException>(() => _h.Taps.EnsureTapAsync("tap300i0", "rogue", null, CancellationToken.None));
        Assert.Equal(ProblemTypes.InvalidState, e.Type);
        Assert.Null(await _h.LinkAsync("tap300i0"));
        var eth0 = (await _h.LinkAsync("eth0"))!.Value;
        Assert.Equal(("veth", 1500, false), (eth0.GetProperty("linkinfo").GetProperty("info_kind").GetString(), eth0.GetProperty("mtu").GetInt32(), eth0.TryGetProperty("master", out _)));
        Assert.Empty(await (await Client.GetAsync("/v1/networks")).ReadModelAsync(ModelJsonContext.Default.ListNetwork, HttpStatusCode.OK));
        Assert.DoesNotContain(_h.Runner.Calls, c => c.Contains("add") && (c.Contains("eth0") || c.Contains("lo") || c.Contains("veth1") || c.Contains("rogue")));
        Assert.DoesNotContain(_h.Runner.Calls, c => c.Contains("set") || c.Contains("del"));
    }

    [Theory]
    [InlineData("eth0")]
    [InlineData("veth1")]
    [InlineData("tap100")]
    [InlineData("tap1i0x")]
    [InlineData("tap1234567890i12")]
    public async Task OnlyTheAgentsTapNamesAreTouched(string name)
    {
        await _h.IpAsync("link", "add", "name", "veth1", "type", "veth", "peer", "name", "veth1peer");
        await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"kvmbr3"}""");

        await Assert.ThrowsAsync<ArgumentException>(() => _h.Taps.RemoveTapAsync(name, CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => _h.Taps.EnsureTapAsync(name, "kvmbr3", null, CancellationToken.None));

        Assert.False((await _h.LinkAsync("veth1"))!.Value.TryGetProperty("master", out _));
        if (name != "veth1")
            Assert.Null(await _h.LinkAsync(name));
    }

    [Fact]
    public async Task AnInterfaceWithATapNameThatIsNoTapIsLeftAlone()
    {
        await _h.IpAsync("link", "add", "name", "tap999i0", "type", "veth", "peer", "name", "tap999peer");
        await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"kvmbr4"}""");

        await Assert.ThrowsAsync<AgentProblemException>(() => _h.Taps.RemoveTapAsync("tap999i0", CancellationToken.None));
        await Assert.ThrowsAsync<AgentProblemException>(() => _h.Taps.EnsureTapAsync("tap999i0", "kvmbr4", null, CancellationToken.None));

        var link = (await _h.LinkAsync("tap999i0"))!.Value;
        Assert.False(link.TryGetProperty("master", out _));
    }

    [Fact]
    public async Task AMultiQueueTapIsRemadeWhenTheQueueModeChanges()
    {
        await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"kvmbr5"}""");
        static bool MultiQueue(JsonElement l) => l.GetProperty("linkinfo").GetProperty("info_data").GetProperty("multi_queue").GetBoolean();

        await _h.Taps.EnsureTapAsync("tap500i0", "kvmbr5", null, multiQueue: true, CancellationToken.None);
        Assert.True(MultiQueue((await _h.LinkAsync("tap500i0"))!.Value));
        await _h.Taps.EnsureTapAsync("tap500i0", "kvmbr5", null, multiQueue: false, CancellationToken.None);
        Assert.False(MultiQueue((await _h.LinkAsync("tap500i0"))!.Value));
        await _h.Taps.EnsureTapAsync("tap500i0", "kvmbr5", null, multiQueue: true, CancellationToken.None);
        await _h.Taps.RemoveTapAsync("tap500i0", CancellationToken.None);

        Assert.Null(await _h.LinkAsync("tap500i0"));
    }

    [Fact]
    public async Task VlanFilteringIsAppliedLiveOrRefusedClearlyWhenTheKernelLacksIt()
    {
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"kvmbr7"}""")).ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.Created);

        var response = await Client.SendJsonAsync(HttpMethod.Put, "/v1/networks/kvmbr7", """{"name":"kvmbr7","vlan_filtering":true}""");

        if (await _h.VlanFilteringSupportedAsync())
        {
            Assert.True((await response.ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.OK)).VlanFiltering);
            Assert.Equal(1, VlanFiltering((await _h.LinkAsync("kvmbr7"))!.Value));
        }
        else
        {
            var problem = await response.ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
            Assert.Equal("vlan_filtering", Assert.Single(problem.Errors!).Attribute);
            Assert.Null((await (await Client.GetAsync("/v1/networks/kvmbr7")).ReadModelAsync(ModelJsonContext.Default.Network, HttpStatusCode.OK)).VlanFiltering);
            await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"kvmbr8","vlan_filtering":true}"""))
                .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
            Assert.Null(await _h.LinkAsync("kvmbr8"));
        }
    }

    [Theory]
    [InlineData("""{"name":"1bad"}""", "name")]
    [InlineData("""{"name":"averyveryverylongname"}""", "name")]
    [InlineData("""{"name":"a b"}""", "name")]
    [InlineData("""{"name":"br0","mtu":10}""", "mtu")]
    [InlineData("""{"name":"br0","address":"300.1.1.1/24"}""", "address")]
    [InlineData("""{"name":"br0","type":"ovs"}""", "type")]
    public async Task InvalidNetworksAreRefusedWithAttributePaths(string body, string attribute)
    {
        var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", body)).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);

        Assert.Equal(attribute, Assert.Single(problem.Errors!).Attribute);
        Assert.Null(await _h.LinkAsync("br0"));
        Assert.DoesNotContain(_h.Runner.Calls, c => c.Contains("add"));
    }

    [Theory]
    [InlineData("/v1/networks/..%2Fx")]
    [InlineData("/v1/networks/a%20b")]
    public async Task InvalidNamesInTheUrlAreRefused(string url)
    {
        await (await Client.GetAsync(url)).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        await (await Client.DeleteAsync(url)).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
    }

    [Fact]
    public async Task AnOwnedBridgeThatVanishedIsReportedMissingAndMadeAgainWhenATapNeedsIt()
    {
        await Client.SendJsonAsync(HttpMethod.Post, "/v1/networks", """{"name":"kvmbr6","mtu":1300,"address":"10.66.0.1/24"}""");
        await _h.IpAsync("link", "del", "dev", "kvmbr6"); // as after a host reboot

        // A restarted agent knows the network from its definition.
        var reloaded = new Bridges(new IpLink(_h.Runner, _h.Options), _h.Options, new Dnsmasq(_h.Options, _h.Runner, NullLogger<Dnsmasq>.Instance),
            new Nat(_h.Options, _h.Runner), NullLogger<Bridges>.Instance);
        var (missing, _) = await reloaded.GetAsync("kvmbr6", CancellationToken.None);
        Assert.Equal(("missing", (int?)null), (missing.State, missing.EffectiveMtu));

        await _h.Taps.EnsureTapAsync("tap600i0", "kvmbr6", null, CancellationToken.None);

        var bridge = (await _h.LinkAsync("kvmbr6"))!.Value;
        Assert.Equal((1300, true), (bridge.GetProperty("mtu").GetInt32(), Up(bridge)));
        Assert.Equal(["10.66.0.1/24"], await _h.AddressesAsync("kvmbr6"));
        Assert.Equal("kvmbr6", (await _h.LinkAsync("tap600i0"))!.Value.GetProperty("master").GetString());
    }
}
