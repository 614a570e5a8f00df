using System.Text.Json.Nodes;
using Kvm.Terraform.Cty;

namespace Kvm.Terraform.Tests.Cty;

public class CtyJsonNodeTests
{
    private static readonly CtyType Disk = CtyType.Object(("size", CtyType.Number), ("bus", CtyType.String));

    private static readonly CtyType Vm = CtyType.Object(
        ("vm_id", CtyType.Number),
        ("name", CtyType.String),
        ("ratio", CtyType.Number),
        ("big", CtyType.Number),
        ("kvm", CtyType.Bool),
        ("disks", CtyType.Map(Disk)),
        ("tags", CtyType.Set(CtyType.String)),
        ("description", CtyType.String),
        ("extra", CtyType.Dynamic));

    [Fact]
    public void Agent_json_to_value_ignores_extras_nulls_missing_and_keeps_numbers_exact()
    {
        var node = JsonNode.Parse("""
            {"vm_id":100,"name":"web","ratio":0.1,"big":1e400,"kvm":true,"status":"running",
             "disks":{"scsi0":{"size":34359738368,"bus":null,"effective":"x"}},"tags":["a"],
             "extra":{"k":[1,"two"]}}
            """);
        var v = CtyJsonNode.FromNode(node, Vm);
        Assert.Equal(100, v.GetAttr("vm_id").AsInt64());
        Assert.Equal("0.1", v.GetAttr("ratio").AsNumber().ToString());
        Assert.Equal(CtyNumber.Parse("1e400"), v.GetAttr("big").AsNumber());
        Assert.Equal(34359738368, v.GetAttr("disks").Index("scsi0").GetAttr("size").AsInt64());
        Assert.True(v.GetAttr("disks").Index("scsi0").GetAttr("bus").IsNull);
        Assert.Equal(CtyValue.Null(CtyType.String), v.GetAttr("description"));
        var extra = v.GetAttr("extra");
        Assert.Equal(CtyType.Object(("k", CtyType.Tuple(CtyType.Number, CtyType.String))), extra.Type);
        Assert.True(v.IsWhollyKnown);
    }

    [Fact]
    public void Value_to_agent_json_with_and_without_nulls()
    {
        var v = CtyValue.Object(Vm,
        [
            ("vm_id", CtyValue.Number(100)),
            ("name", CtyValue.String("web")),
            ("ratio", CtyValue.Number(CtyNumber.Parse("0.1"))),
            ("big", CtyValue.Number(CtyNumber.Parse("1e30"))),
            ("disks", CtyValue.Map(Disk, [("scsi0", CtyValue.Object(Disk, [("size", CtyValue.Number(8))]))])),
            ("tags", CtyValue.Set(CtyType.String, CtyValue.String("a"))),
        ]);
        Assert.Equal(
            """{"big":1000000000000000000000000000000,"description":null,"disks":{"scsi0":{"bus":null,"size":8}},"extra":null,"kvm":null,"name":"web","ratio":0.1,"tags":["a"],"vm_id":100}""",
            CtyJsonNode.ToNode(v)!.ToJsonString());
        var compact = CtyJsonNode.ToNode(v, CtyNodeOptions.OmitNullAttributes)!;
        Assert.Equal(
            """{"big":1000000000000000000000000000000,"disks":{"scsi0":{"size":8}},"name":"web","ratio":0.1,"tags":["a"],"vm_id":100}""",
            compact.ToJsonString());
        Assert.Equal(v, CtyJsonNode.FromNode(compact, Vm));
        Assert.Null(CtyJsonNode.ToNode(CtyValue.Null(Vm)));
    }

    [Fact]
    public void Unknowns_throw_or_are_omitted()
    {
        var v = CtyValue.Object(Disk, [("size", CtyValue.Unknown(CtyType.Number)), ("bus", CtyValue.String("virtio"))]);
        var e = Assert.Throws<CtyException>(() => CtyJsonNode.ToNode(v));
        Assert.Equal(".size", e.Path.ToString());
        Assert.Equal("""{"bus":"virtio"}""", CtyJsonNode.ToNode(v, CtyNodeOptions.OmitUnknownAttributes)!.ToJsonString());
    }

    [Fact]
    public void Clr_backed_nodes_convert_too()
    {
        var node = new JsonObject { ["size"] = 0.1, ["bus"] = "sata" };
        var v = CtyJsonNode.FromNode(node, Disk);
        Assert.Equal("0.1", v.GetAttr("size").AsNumber().ToString());
        Assert.Equal(CtyNumber.FromDecimal(2.5m), CtyJsonNode.FromNode(JsonValue.Create(2.5m), CtyType.Number).AsNumber());
        Assert.Equal(CtyNumber.FromInt64(7), CtyJsonNode.FromNode(JsonValue.Create(7), CtyType.Number).AsNumber());
        Assert.Equal("7", CtyJsonNode.FromNode(JsonValue.Create(7), CtyType.String).AsString());
    }

    [Fact]
    public void Type_mismatches_throw_with_a_path()
    {
        var e = Assert.Throws<CtyException>(() => CtyJsonNode.FromNode(JsonNode.Parse("""{"disks":{"a":{"size":true}}}"""), Vm));
        Assert.Equal(".disks[\"a\"].size", e.Path.ToString());
    }
}
