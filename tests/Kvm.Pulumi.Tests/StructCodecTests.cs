using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kvm.Model.Schema;
using Kvm.Pulumi.Schema;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Tests;

public class StructCodecTests
{
    private static readonly ResourceKind VmKind = ResourceKind.ForToken("kvm:index/vm:Vm")!;

    internal static Struct Parse(string json) => Struct.Parser.ParseJson(json);

    internal static Value Secret(Value inner)
    {
        var wrapper = new Struct();
        wrapper.Fields[Sentinels.SignatureKey] = Value.ForString(Sentinels.SecretSignature);
        wrapper.Fields["value"] = inner;
        return Value.ForStruct(wrapper);
    }

    [Fact]
    public void NamesBecomeSnakeCaseRecursivelyAndMapKeysStay()
    {
        var decoded = PropertyCodec.Decode(Parse("""
            {"name":"web","vmId":101,"cpu":{"cores":2},
             "disks":{"scsi0":{"sizeGib":20,"readOnly":false},"virtio1":{"volumeId":"default/data.qcow2"}},
             "networkInterfaces":{"net0":{"linkUp":true}},"tags":["a","b"]}
            """), VmKind.Shape, DecodeMode.Inputs);
        Assert.Empty(decoded.Problems);
        Assert.Equal("""
            {"name":"web","vm_id":101,"cpu":{"cores":2},"disks":{"scsi0":{"size_gib":20,"read_only":false},"virtio1":{"volume_id":"default/data.qcow2"}},"network_interfaces":{"net0":{"link_up":true}},"tags":["a","b"]}
            """.Trim(), decoded.Value.ToJsonString());
    }

    [Fact]
    public void IntegersComeBackAsIntegersAndFractionsAreRefused()
    {
        var decoded = PropertyCodec.Decode(Parse("""{"memory":{"sizeMib":2048.0},"cpu":{"sockets":1.5}}"""), VmKind.Shape, DecodeMode.Inputs);
        Assert.Equal("2048", decoded.Value["memory"]!["size_mib"]!.ToJsonString());
        var problem = Assert.Single(decoded.Problems);
        Assert.Equal("cpu.sockets", problem.Path.ToString());
        Assert.Contains("whole number", problem.Message);
        var encoded = PropertyCodec.Encode(decoded.Value, VmKind.Shape);
        Assert.Equal(2048d, encoded.Fields["memory"].StructValue.Fields["sizeMib"].NumberValue);
    }

    [Fact]
    public void SecretsAtSeveralDepthsAreUnwrappedRememberedAndRewrapped()
    {
        var news = new Struct();
        news.Fields["name"] = Secret(Value.ForString("web"));
        var disk = new Struct();
        disk.Fields["serial"] = Secret(Value.ForString("S1"));
        disk.Fields["sizeGib"] = Value.ForNumber(10);
        var disks = new Struct();
        disks.Fields["scsi0"] = Value.ForStruct(disk);
        news.Fields["disks"] = Value.ForStruct(disks);
        news.Fields["tags"] = Secret(Value.ForList(Value.ForString("x")));

        var decoded = PropertyCodec.Decode(news, VmKind.Shape, DecodeMode.Inputs);
        Assert.Empty(decoded.Problems);
        Assert.Equal("""{"name":"web","disks":{"scsi0":{"serial":"S1","size_gib":10}},"tags":["x"]}""", decoded.Value.ToJsonString());
        Assert.Equal(["disks[\"scsi0\"].serial", "name", "tags"], decoded.Secrets.Select(p => p.ToString()).Order());

        var encoded = PropertyCodec.Encode(decoded.Value, VmKind.Shape, decoded.Secrets);
        Assert.Equal(news, encoded);
    }

    [Fact]
    public void ASecretAroundAnObjectWrapsItOnceOnTheWayOut()
    {
        var cpu = new Struct();
        cpu.Fields["cores"] = Secret(Value.ForNumber(4));
        var news = new Struct();
        news.Fields["cpu"] = Secret(Value.ForStruct(cpu));
        var decoded = PropertyCodec.Decode(news, VmKind.Shape, DecodeMode.Inputs);
        Assert.Contains(AttrPath.Root.Attr("cpu"), decoded.Secrets);
        Assert.Contains(AttrPath.Root.Attr("cpu").Attr("cores"), decoded.Secrets);
        var encoded = PropertyCodec.Encode(decoded.Value, VmKind.Shape, decoded.Secrets);
        var wrapped = encoded.Fields["cpu"].StructValue;
        Assert.Equal(Sentinels.SecretSignature, wrapped.Fields[Sentinels.SignatureKey].StringValue);
        Assert.Equal(4d, wrapped.Fields["value"].StructValue.Fields["cores"].NumberValue);
    }

    [Fact]
    public void SensitiveSettingsAreAlwaysSecretOnTheWayOut()
    {
        var encoded = PropertyCodec.Encode(new JsonObject { ["endpoint"] = "http://a", ["token"] = "t0ken" }, ProviderFields.Shape);
        Assert.Equal("http://a", encoded.Fields["endpoint"].StringValue);
        Assert.Equal(Sentinels.SecretSignature, encoded.Fields["token"].StructValue.Fields[Sentinels.SignatureKey].StringValue);
        Assert.Equal("t0ken", encoded.Fields["token"].StructValue.Fields["value"].StringValue);
    }

    [Fact]
    public void UnknownsAreKeptForTheRoundTripAndLeftOutOfTheKnownCopy()
    {
        var decoded = PropertyCodec.Decode(Parse($$"""
            {"name":"{{Sentinels.Unknown}}","cpu":{"cores":"3eeb2bf0-c639-47a8-9e75-3b44932eb421"},
             "disks":{"scsi0":{"volumeId":"{{Sentinels.Unknown}}"} },"tags":["a","{{Sentinels.Unknown}}"]}
            """), VmKind.Shape, DecodeMode.Inputs);
        Assert.Empty(decoded.Problems);
        Assert.Equal(["cpu.cores", "disks[\"scsi0\"].volume_id", "name", "tags[1]"], decoded.Unknowns.Select(p => p.ToString()).Order());
        Assert.True(decoded.IsUnknownAt(AttrPath.Root.Attr("cpu").Attr("cores")));
        Assert.False(decoded.IsUnknownAt(AttrPath.Root.Attr("cpu")));
        Assert.Equal("""{"cpu":{},"disks":{"scsi0":{}},"tags":["a",null]}""", decoded.Known().ToJsonString());
        var encoded = PropertyCodec.Encode(decoded.Value, VmKind.Shape, decoded.Secrets);
        Assert.Equal(Sentinels.Unknown, encoded.Fields["cpu"].StructValue.Fields["cores"].StringValue);
        Assert.Equal(Sentinels.Unknown, encoded.Fields["name"].StringValue);
    }

    [Fact]
    public void AWholeUnknownObjectOrMapIsOneUnknownPath()
    {
        var decoded = PropertyCodec.Decode(Parse($$"""{"disks":"{{Sentinels.Unknown}}","firmware":"dd056dcd-154b-4c76-9bd3-c8f88648b5ff"}"""), VmKind.Shape, DecodeMode.Inputs);
        Assert.Empty(decoded.Problems);
        Assert.Equal(["disks", "firmware"], decoded.Unknowns.Select(p => p.ToString()).Order());
        Assert.True(decoded.IsUnknownAt(AttrPath.Root.Attr("disks").Key("scsi0").Attr("size_gib")));
    }

    [Fact]
    public void NullsAreAbsent()
    {
        var decoded = PropertyCodec.Decode(Parse("""{"name":"a","description":null,"cpu":{"cores":null}}"""), VmKind.Shape, DecodeMode.Inputs);
        Assert.Equal("""{"name":"a","cpu":{}}""", decoded.Value.ToJsonString());
    }

    [Fact]
    public void WrongTypesUnknownNamesAndOutputsAreProblemsWithPaths()
    {
        var decoded = PropertyCodec.Decode(Parse("""
            {"name":3,"nmae":"x","status":"running","__defaults":[],"disks":{"scsi0":{"sizeGib":"big"}},"tags":"a"}
            """), VmKind.Shape, DecodeMode.Inputs);
        var problems = decoded.Problems.Select(p => $"{JsonPaths.ToPulumi(p.Path)}: {p.Message}").Order().ToList();
        Assert.Equal(
        [
            "disks[\"scsi0\"].sizeGib: expected a whole number, got a string.",
            "name: expected a string, got a number.",
            "nmae: is not a property of this type.",
            "status: is reported by the agent and cannot be set.",
            "tags: expected a list, got a string.",
        ], problems);
    }

    [Fact]
    public void StateKeepsAgentReportedValues()
    {
        var decoded = PropertyCodec.Decode(Parse("""{"name":"a","status":"running","macAddresses":{"net0":"52:54:00:00:00:01"}}"""), VmKind.Shape, DecodeMode.State);
        Assert.Empty(decoded.Problems);
        Assert.Equal("""{"name":"a","status":"running","mac_addresses":{"net0":"52:54:00:00:00:01"}}""", decoded.Value.ToJsonString());
    }

    [Fact]
    public void ConfigValuesArriveAsStringsAndAreDecodedByType()
    {
        var config = new Struct();
        config.Fields["endpoint"] = Value.ForString("http://127.0.0.1:8680");
        config.Fields["hosts"] = Value.ForString("""{"lab-01":"http://10.0.0.1:8680"}""");
        config.Fields["token"] = Secret(Value.ForString("s3cret"));
        config.Fields["version"] = Value.ForString("0.1.0");
        var decoded = PropertyCodec.Decode(config, ProviderFields.Shape, DecodeMode.Config);
        Assert.Empty(decoded.Problems);
        Assert.Equal("""{"endpoint":"http://127.0.0.1:8680","hosts":{"lab-01":"http://10.0.0.1:8680"},"token":"s3cret"}""", decoded.Value.ToJsonString());
        Assert.Contains(AttrPath.Root.Attr("token"), decoded.Secrets);

        var bad = new Struct();
        bad.Fields["hosts"] = Value.ForString("not json");
        var problem = Assert.Single(PropertyCodec.Decode(bad, ProviderFields.Shape, DecodeMode.Config).Problems);
        Assert.Equal("hosts", problem.Path.ToString());
    }

    [Fact]
    public void ResourceReferencesGiveTheirIdAndAnEmptyIdIsUnknown()
    {
        var reference = new Struct();
        reference.Fields[Sentinels.SignatureKey] = Value.ForString(Sentinels.ResourceReferenceSignature);
        reference.Fields["urn"] = Value.ForString("urn:pulumi:s::p::kvm:index/network:Network::lab");
        reference.Fields["id"] = Value.ForString("br-lab");
        var nic = new Struct();
        nic.Fields["bridge"] = Value.ForStruct(reference);
        var nics = new Struct();
        nics.Fields["net0"] = Value.ForStruct(nic);
        var news = new Struct();
        news.Fields["networkInterfaces"] = Value.ForStruct(nics);
        Assert.Equal("br-lab", (string?)PropertyCodec.Decode(news, VmKind.Shape, DecodeMode.Inputs).Value["network_interfaces"]!["net0"]!["bridge"]);

        reference.Fields["id"] = Value.ForString("");
        Assert.True(PropertyCodec.Decode(news, VmKind.Shape, DecodeMode.Inputs).HasUnknowns);
    }

    [Fact]
    public void PulumiPathsAreCamelCaseWithQuotedKeys() =>
        Assert.Equal("networkInterfaces[\"net0\"].linkUp", JsonPaths.ToPulumi(AttrPath.Parse("network_interfaces[\"net0\"].link_up")));

    [Fact]
    public void EncodedStructsSurviveTheWire()
    {
        var decoded = PropertyCodec.Decode(Parse("""{"name":"a","memory":{"sizeMib":512}}"""), VmKind.Shape, DecodeMode.Inputs);
        var encoded = PropertyCodec.Encode(decoded.Value, VmKind.Shape);
        Assert.Equal(encoded, Struct.Parser.ParseFrom(encoded.ToByteArray()));
    }
}
