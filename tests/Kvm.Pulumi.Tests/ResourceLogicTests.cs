using System.Text.Json.Nodes;
using Kvm.Model.Schema;
using Kvm.Pulumi.Provider;
using Kvm.Pulumi.Schema;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Tests;

public class ResourceLogicTests
{
    private static readonly ResourceKind Vm = ResourceKind.ForToken("kvm:index/vm:Vm")!;
    private static readonly ResourceKind Volume = ResourceKind.ForToken("kvm:index/volume:Volume")!;

    private static DecodedProperties Inputs(ResourceKind kind, string json) =>
        PropertyCodec.Decode(StructCodecTests.Parse(json), kind.Shape, DecodeMode.Inputs);

    private static JsonObject State(string json) => JsonNode.Parse(json)!.AsObject();

    private static List<string> Failures(ResourceKind kind, string news, string? olds = null, ProviderSettings? settings = null) =>
        [.. ResourceLogic.Check(kind, Inputs(kind, news), olds is null ? null : Inputs(kind, olds), settings)
            .Select(p => $"{JsonPaths.ToPulumi(p.Path)}: {p.Message}").Order(StringComparer.Ordinal)];

    [Fact]
    public void CheckReportsModelRulesAtCamelCasePaths()
    {
        var failures = Failures(Vm, """{"name":"web 1","cpu":{"cores":0},"disks":{"scsi0":{"cache":"fast"}}}""");
        Assert.Collection(failures,
            f => Assert.StartsWith("cpu.cores: 0 is out of range", f),
            f => Assert.StartsWith("disks[\"scsi0\"].cache: \"fast\" is not one of", f),
            f => Assert.StartsWith("disks[\"scsi0\"].sizeGib: is required for an inline disk", f),
            f => Assert.StartsWith("name: \"web 1\" is not valid", f));
    }

    [Fact]
    public void CheckRequiresRequiredInputsAndAcceptsAValidVm()
    {
        Assert.Equal(["name: is required."], Failures(Vm, "{}"));
        Assert.Empty(Failures(Vm, """{"name":"web","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10}}}"""));
    }

    [Fact]
    public void CheckDefersRulesThatTouchUnknownValues()
    {
        Assert.Empty(Failures(Vm, $$$"""{"name":"{{{Sentinels.Unknown}}}","disks":{"scsi0":{"volumeId":"{{{Sentinels.Unknown}}}"} }}"""));
        Assert.Equal(["cpu.cores: 0 is out of range: must be between 1 and 256."],
            Failures(Vm, $$$"""{"name":"{{{Sentinels.Unknown}}}","cpu":{"cores":0}}"""));
    }

    [Fact]
    public void CheckAppliesUpdateRulesAgainstThePreviousInputs()
    {
        var failures = Failures(Vm, """{"name":"web","disks":{"scsi0":{"sizeGib":10}}}""", """{"name":"web","disks":{"scsi0":{"sizeGib":20}}}""");
        Assert.Equal(["disks[\"scsi0\"].sizeGib: disks can only grow: 10 GiB is smaller than the current 20 GiB."], failures);
        Assert.Single(Failures(Volume, """{"name":"d.qcow2","sizeGib":1}""", """{"name":"d.qcow2","sizeGib":2}"""));
    }

    [Fact]
    public void CheckRefusesHostsTheProviderDoesNotKnow()
    {
        var settings = new ProviderSettings("http://a:8680", null, new Dictionary<string, string> { ["lab-01"] = "http://b:8680" });
        Assert.Empty(Failures(Vm, """{"name":"web","host":"lab-01"}""", settings: settings));
        var failure = Assert.Single(Failures(Vm, """{"name":"web","host":"lab-02"}""", settings: settings));
        Assert.StartsWith("host: \"lab-02\" is not a configured host; the provider's `hosts` are: lab-01", failure);
    }

    private static readonly JsonObject WebState = State("""
        {"host":"lab-01","vm_id":100,"name":"web","memory":{"size_mib":1024},"disks":{"scsi0":{"size_gib":10}},
         "status":"running","pid":4242,"mac_addresses":{"net0":"52:54:00:12:34:56"}}
        """);

    private static DiffOutcome Diff(string news, JsonObject? state = null, ResourceKind? kind = null) =>
        ResourceLogic.Diff(kind ?? Vm, state ?? WebState, Inputs(kind ?? Vm, news));

    private static List<string> Describe(DiffOutcome outcome) =>
        [.. outcome.Changes.Select(c => $"{JsonPaths.ToPulumi(c.Path)} {c.Change} {c.Update}")];

    [Fact]
    public void SameInputsMeanNoChangesEvenWithComputedAndReportedValuesInState()
    {
        var outcome = Diff("""{"host":"lab-01","name":"web","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10}}}""");
        Assert.Empty(outcome.Changes);
        Assert.False(outcome.DeleteBeforeReplace);
    }

    [Fact]
    public void InPlaceChangesAreClassifiedWithoutReplacement()
    {
        var outcome = Diff("""{"host":"lab-01","name":"web2","memory":{"sizeMib":2048},"disks":{"scsi0":{"sizeGib":20}},"description":"x"}""");
        Assert.Equal(["description Add Live", "disks[\"scsi0\"].sizeGib Update Live", "memory.sizeMib Update Restart", "name Update Live"], Describe(outcome));
        Assert.Empty(outcome.Replaces);
        Assert.Equal(["description", "disks", "memory", "name"], outcome.Diffs.Order());
    }

    [Fact]
    public void CreateOnlyChangesReplaceAndAKeptNameDeletesFirst()
    {
        var outcome = Diff("""{"host":"lab-01","name":"web","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10,"format":"raw"}}}""");
        Assert.Equal(["disks[\"scsi0\"].format Add Replace"], Describe(outcome));
        Assert.Equal(["disks"], outcome.Replaces);
        Assert.True(outcome.DeleteBeforeReplace);
    }

    [Fact]
    public void ANewNameLetsTheReplacementBeCreatedFirst()
    {
        var outcome = Diff("""{"host":"lab-01","name":"web-b","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10,"format":"raw"}}}""");
        Assert.Contains("disks", outcome.Replaces);
        Assert.False(outcome.DeleteBeforeReplace);
    }

    [Fact]
    public void AKeptUserSetVmIdCollidesToo()
    {
        var outcome = Diff("""{"host":"lab-01","vmId":100,"name":"web-b","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10,"format":"raw"}}}""");
        Assert.True(outcome.DeleteBeforeReplace);
        var changedId = Diff("""{"host":"lab-01","vmId":101,"name":"web","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10}}}""");
        Assert.Equal(["vmId Update Replace"], Describe(changedId));
        Assert.True(changedId.DeleteBeforeReplace);
    }

    [Fact]
    public void MovingToAnotherHostReplacesCreateFirst()
    {
        var outcome = Diff("""{"host":"lab-02","name":"web","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10}}}""");
        Assert.Equal(["host Update Replace"], Describe(outcome));
        Assert.Equal(["host"], outcome.Replaces);
        Assert.False(outcome.DeleteBeforeReplace);
        Assert.Equal(["host Delete Replace"], Describe(Diff("""{"name":"web","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10}}}""")));
    }

    [Fact]
    public void AddedAndRemovedDevicesAreAddsAndDeletes()
    {
        // scsi disks are hot-plugged by default (hotplug = disk, network, usb); sata disks always wait for a restart.
        var outcome = Diff("""{"host":"lab-01","name":"web","memory":{"sizeMib":1024},"disks":{"scsi1":{"sizeGib":5}}}""");
        Assert.Equal(["disks[\"scsi0\"] Delete Live", "disks[\"scsi1\"] Add Live"], Describe(outcome));
        var sata = Diff("""{"host":"lab-01","name":"web","memory":{"sizeMib":1024},"disks":{"sata1":{"sizeGib":5}}}""");
        Assert.Equal(["disks[\"sata1\"] Add Restart", "disks[\"scsi0\"] Delete Live"], Describe(sata));
    }

    [Fact]
    public void VcpusAndUsbDevicesFollowHotplugAndTheWatchdogActionIsLive()
    {
        const string Base = """{"host":"lab-01","name":"web","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10}}""";
        var state = State("""
            {"host":"lab-01","vm_id":100,"name":"web","memory":{"size_mib":1024},"disks":{"scsi0":{"size_gib":10}},"cpu":{"cores":4,"vcpus":2},
             "watchdog":{"action":"reset"},"status":"running","pid":4242}
            """);
        Assert.Equal(["cpu.vcpus Update Restart"], Describe(Diff(Base + ""","cpu":{"cores":4,"vcpus":3},"watchdog":{"action":"reset"}}""", state)));
        Assert.Equal(["watchdog.action Update Live"], Describe(Diff(Base + ""","cpu":{"cores":4,"vcpus":2},"watchdog":{"action":"pause"}}""", state)));
        state["hotplug"] = new JsonArray("cpu", "usb");
        Assert.Equal(["cpu.vcpus Update Live", "usbDevices[\"usb0\"] Add Live"],
            Describe(Diff(Base + ""","hotplug":["cpu","usb"],"cpu":{"cores":4,"vcpus":3},"watchdog":{"action":"reset"},"usbDevices":{"usb0":{"host":"spice"}},"display":{"spice":true}}""", state)).Where(c => !c.StartsWith("display", StringComparison.Ordinal)));
    }

    [Fact]
    public void UnknownValuesAreChangesOfTheirWorstKind()
    {
        var outcome = Diff($$$"""{"host":"lab-01","name":"web","memory":{"sizeMib":"{{{Sentinels.Unknown}}}"},"disks":{"scsi0":{"sizeGib":10}},"firmware":"{{{Sentinels.Unknown}}}"}""");
        Assert.Equal(["firmware Add Replace", "memory.sizeMib Update Restart"], Describe(outcome));
        Assert.Equal(["firmware"], outcome.Replaces);
        var unknownHost = Diff("""{"host":"UNKNOWN","name":"web","memory":{"sizeMib":1024},"disks":{"scsi0":{"sizeGib":10}}}""".Replace("UNKNOWN", Sentinels.Unknown, StringComparison.Ordinal));
        Assert.Equal(["host"], unknownHost.Replaces);
        Assert.False(unknownHost.DeleteBeforeReplace);
    }

    [Fact]
    public void VolumeReplacementCollidesOnlyWhenNameAndPoolStay()
    {
        var state = State("""{"name":"d.qcow2","size_gib":1,"volume_id":"default/d.qcow2","path":"/x"}""");
        var format = Diff("""{"name":"d.qcow2","sizeGib":1,"format":"raw"}""", state, Volume);
        Assert.True(format.DeleteBeforeReplace);
        var renamed = Diff("""{"name":"e.qcow2","sizeGib":1}""", state, Volume);
        Assert.Equal(["name"], renamed.Replaces);
        Assert.False(renamed.DeleteBeforeReplace);
        var otherPool = Diff("""{"name":"d.qcow2","sizeGib":1,"pool":"fast"}""", state, Volume);
        Assert.False(otherPool.DeleteBeforeReplace);
    }

    [Fact]
    public void APreviewedCreateShowsAgentValuesAsUnknown()
    {
        var outputs = ResourceLogic.PreviewOfCreate(Vm, Inputs(Vm, """{"name":"web"}"""));
        Assert.Equal("web", (string?)outputs["name"]);
        Assert.Equal(Sentinels.Unknown, (string?)outputs["vm_id"]);
        Assert.Equal(Sentinels.Unknown, (string?)outputs["status"]);
        Assert.Equal(Sentinels.Unknown, (string?)outputs["mac_addresses"]);
        Assert.Null(outputs["memory"]);
    }

    [Fact]
    public void ReadInputsKeepComputedValuesOnImportOnly()
    {
        var refreshed = ResourceLogic.InputsFromState(Vm, WebState, State("""{"host":"lab-01","name":"web"}"""));
        Assert.Null(refreshed["vm_id"]);
        Assert.Null(refreshed["status"]);
        Assert.Equal("lab-01", (string?)refreshed["host"]);
        var imported = ResourceLogic.InputsFromState(Vm, WebState, null);
        Assert.Equal(100, (int?)imported["vm_id"]);
        Assert.Null(imported["pid"]);
    }

    [Theory]
    [InlineData("kvm:index/vm:Vm", "101", null, "101")]
    [InlineData("kvm:index/vm:Vm", "lab-01/101", "lab-01", "101")]
    [InlineData("kvm:index/volume:Volume", "default/d.qcow2", null, "default/d.qcow2")]
    [InlineData("kvm:index/volume:Volume", "lab-01/default/d.qcow2", "lab-01", "default/d.qcow2")]
    [InlineData("kvm:index/image:Image", "default/d.qcow2", null, "default/d.qcow2")]
    [InlineData("kvm:index/image:Image", "lab-01/default/d.qcow2", "lab-01", "default/d.qcow2")]
    [InlineData("kvm:index/network:Network", "lab-01/vmbr1", "lab-01", "vmbr1")]
    public void ImportIdsMayNameTheHost(string token, string id, string? host, string resourceId) =>
        Assert.Equal((host, resourceId), ResourceLogic.SplitImportId(ResourceKind.ForToken(token)!, id));
}
