using System.Text.Json.Nodes;
using Kvm.Terraform.Cty;

namespace Kvm.Terraform.Tests.Cty;

public class CtyEdgeCaseTests
{
    private static byte[] Hex(string hex) => CtyMsgPackTests.Hex(hex);

    [Fact]
    public void Refined_unknown_inside_a_dynamic_wrapper_keeps_type_and_refinements()
    {
        var v = CtyValue.Unknown(CtyType.String, CtyRefinements.NotNullOnly);
        var bytes = CtyMsgPack.Encode(v, CtyType.Dynamic);
        Assert.Equal("92C40822737472696E6722C7030C8101C2", Convert.ToHexString(bytes));
        Assert.Equal(v, CtyMsgPack.Decode(bytes, CtyType.Dynamic));
    }

    [Fact]
    public void Sets_of_objects_with_unknowns_compare_structurally()
    {
        var t = CtyType.Object(("id", CtyType.String), ("name", CtyType.String));
        CtyValue Item(string name) => CtyValue.Object(t, ("id", CtyValue.Unknown(CtyType.String)), ("name", CtyValue.String(name)));
        var a = CtyValue.Set(t, Item("a"), Item("b"));
        var b = CtyValue.Set(t, Item("b"), Item("a"));
        Assert.Equal(a, b);
        Assert.Equal(2, a.Count);
        var bytes = CtyMsgPack.Encode(a, CtyType.Set(t));
        Assert.Equal(b, CtyMsgPack.Decode(bytes, CtyType.Set(t)));
    }

    [Fact]
    public void Collections_of_dynamic_wrap_each_element()
    {
        var t = CtyType.List(CtyType.Dynamic);
        var v = CtyValue.List(CtyType.Dynamic, CtyValue.String("a"), CtyValue.Number(1), CtyValue.DynamicNull);
        var bytes = CtyMsgPack.Encode(v, t);
        Assert.Equal("9392C40822737472696E6722A16192C408226E756D6265722201C0", Convert.ToHexString(bytes));
        Assert.Equal(v, CtyMsgPack.Decode(bytes, t));
        var json = CtyJson.EncodeToString(v, t);
        Assert.Equal("""[{"value":"a","type":"string"},{"value":1,"type":"number"},null]""", json);
        Assert.Equal(v, CtyJson.Decode(json, t));
    }

    [Fact]
    public void Unknown_collections_and_objects_in_msgpack_and_refined_length_on_maps()
    {
        var t = CtyType.Map(CtyType.String);
        var v = CtyValue.Unknown(t, new CtyRefinements { NotNull = true, LengthUpperBound = 3 });
        Assert.Equal("C7050C8201C20603", Convert.ToHexString(CtyMsgPack.Encode(v, t)));
        Assert.Equal(v, CtyMsgPack.Decode(CtyMsgPack.Encode(v, t), t));
    }

    [Fact]
    public void Json_node_edges()
    {
        Assert.Equal(CtyValue.Null(CtyType.String), CtyJsonNode.FromNode(null, CtyType.String));
        Assert.Equal(CtyValue.Null(CtyType.String), CtyJsonNode.FromNode(JsonNode.Parse("null"), CtyType.String));
        Assert.Equal(CtyValue.DynamicNull, CtyJsonNode.FromNode(null, CtyType.Dynamic));
        var set = CtyJsonNode.FromNode(JsonNode.Parse("""["a","b","a"]"""), CtyType.Set(CtyType.String));
        Assert.Equal(2, set.Count);
        var big = CtyJsonNode.ToNode(CtyValue.Number(CtyNumber.Parse("18446744073709551616")))!;
        Assert.Equal("18446744073709551616", big.ToJsonString());
        Assert.Equal("0.1", CtyJsonNode.ToNode(CtyValue.Number(CtyNumber.Parse("0.1")))!.ToJsonString());
        const string Precise = "0.12345678901234567890123456789012345";
        Assert.Equal(Precise, CtyJsonNode.FromNode(JsonNode.Parse(Precise), CtyType.Number).AsNumber().ToString());
        Assert.Equal(Precise, CtyJsonNode.ToNode(CtyValue.Number(CtyNumber.Parse(Precise)))!.ToJsonString());
    }

    [Fact]
    public void Trailing_bytes_after_a_complete_value_are_rejected()
    {
        var e = Assert.Throws<CtyException>(() => CtyMsgPack.Decode(Hex("C0 C0"), CtyType.String));
        Assert.Contains("unexpected bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_input_is_truncated_not_null()
    {
        var e = Assert.Throws<CtyException>(() => CtyMsgPack.Decode([], CtyType.String));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }
}
