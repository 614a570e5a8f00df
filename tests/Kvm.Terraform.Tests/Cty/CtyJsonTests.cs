using Kvm.Terraform.Cty;

namespace Kvm.Terraform.Tests.Cty;

public class CtyJsonTests
{
    private static readonly CtyType Vm = CtyType.Object(
        ("name", CtyType.String),
        ("memory", CtyType.Number),
        ("ratio", CtyType.Number),
        ("on", CtyType.Bool),
        ("tags", CtyType.Set(CtyType.String)),
        ("labels", CtyType.Map(CtyType.String)),
        ("disks", CtyType.List(CtyType.Object(("size", CtyType.Number), ("bus", CtyType.String)))),
        ("pair", CtyType.Tuple(CtyType.String, CtyType.Number)),
        ("meta", CtyType.Dynamic));

    [Fact]
    public void Decodes_state_json_with_missing_attributes_as_typed_nulls()
    {
        var v = CtyJson.Decode("""{"name":"web","memory":2048,"disks":[{"size":"10.5"}],"tags":["a","b","a"]}""", Vm);
        Assert.Equal("web", v.GetAttr("name").AsString());
        Assert.Equal(2048, v.GetAttr("memory").AsInt64());
        Assert.Equal(CtyValue.Null(CtyType.Number), v.GetAttr("ratio"));
        Assert.Equal(CtyValue.Null(CtyType.Map(CtyType.String)), v.GetAttr("labels"));
        Assert.Equal(CtyValue.Null(CtyType.Dynamic), v.GetAttr("meta"));
        Assert.Equal("10.5", v.GetAttr("disks").Index(0).GetAttr("size").AsNumber().ToString());
        Assert.True(v.GetAttr("disks").Index(0).GetAttr("bus").IsNull);
        Assert.Equal(2, v.GetAttr("tags").Count);
        Assert.Equal(9, v.Count);
    }

    [Fact]
    public void Encodes_every_attribute_sorted_with_exact_numbers()
    {
        var v = CtyValue.Object(Vm,
        [
            ("name", CtyValue.String("wéb<&>")),
            ("memory", CtyValue.Number(CtyNumber.Parse("1e400"))),
            ("ratio", CtyValue.Number(CtyNumber.Parse("0.1"))),
            ("on", CtyValue.True),
            ("labels", CtyValue.Map(CtyType.String, [("k", CtyValue.String("v"))])),
            ("pair", CtyValue.Tuple(CtyValue.String("x"), CtyValue.Number(-3))),
            ("meta", CtyValue.List(CtyType.Number, CtyValue.Number(1))),
        ]);
        var json = CtyJson.EncodeToString(v, Vm);
        var big = "1" + new string('0', 400);
        Assert.Equal(
            $$"""{"disks":null,"labels":{"k":"v"},"memory":{{big}},"meta":{"value":[1],"type":["list","number"]},"name":"wéb<&>","on":true,"pair":["x",-3],"ratio":0.1,"tags":null}""",
            json);
        Assert.Equal(v, CtyJson.Decode(json, Vm));
    }

    [Fact]
    public void Numbers_and_bools_may_be_strings()
    {
        var t = CtyType.Object(("n", CtyType.Number), ("b", CtyType.Bool), ("s", CtyType.String));
        var v = CtyJson.Decode("""{"n":"12.50","b":"true","s":12.50}""", t);
        Assert.Equal(CtyNumber.Parse("12.5"), v.GetAttr("n").AsNumber());
        Assert.True(v.GetAttr("b").AsBool());
        Assert.Equal("12.50", v.GetAttr("s").AsString());
        Assert.Equal("true", CtyJson.Decode("true", CtyType.String).AsString());
    }

    [Fact]
    public void Large_json_numbers_are_exact()
    {
        Assert.Equal("18446744073709551616", CtyJson.Decode("18446744073709551616", CtyType.Number).AsNumber().ToString());
        Assert.Equal("0.30000000000000000001", CtyJson.Decode("0.30000000000000000001", CtyType.Number).AsNumber().ToString());
        Assert.Equal(CtyNumber.Parse("1e400"), CtyJson.Decode("1E+400", CtyType.Number).AsNumber());
    }

    [Fact]
    public void Dynamic_values_carry_their_type_in_either_order()
    {
        var a = CtyJson.Decode("""{"type":["map","number"],"value":{"x":1}}""", CtyType.Dynamic);
        var b = CtyJson.Decode("""{"value":{"x":1},"type":["map","number"]}""", CtyType.Dynamic);
        Assert.Equal(a, b);
        Assert.Equal(CtyType.Map(CtyType.Number), a.Type);
        Assert.Equal(CtyValue.DynamicNull, CtyJson.Decode("null", CtyType.Dynamic));
        Assert.Equal("""{"value":null,"type":"string"}""", CtyJson.EncodeToString(CtyValue.Null(CtyType.String), CtyType.Dynamic));
        Assert.Equal(CtyValue.Null(CtyType.String), CtyJson.Decode("""{"value":null,"type":"string"}""", CtyType.Dynamic));
    }

    [Fact]
    public void Unknown_attributes_are_errors_unless_ignored()
    {
        var t = CtyType.Object(("a", CtyType.String));
        var e = Assert.Throws<CtyException>(() => CtyJson.Decode("""{"a":"x","gone":{"deep":[1,2]}}""", t));
        Assert.Contains("unsupported attribute \"gone\"", e.Message, StringComparison.Ordinal);
        var v = CtyJson.Decode("""{"gone":{"deep":[1,2]},"a":"x"}""", t, ignoreUnknownAttributes: true);
        Assert.Equal("x", v.GetAttr("a").AsString());
    }

    [Fact]
    public void Escaped_attribute_names_are_matched()
    {
        var t = CtyType.Object(("a", CtyType.String));
        Assert.Equal("x", CtyJson.Decode("""{"\u0061":"x"}""", t).GetAttr("a").AsString());
    }

    [Fact]
    public void Unknowns_cannot_be_written()
    {
        var t = CtyType.Object(("a", CtyType.String));
        var v = CtyValue.Object(t, [("a", CtyValue.Unknown(CtyType.String))]);
        var e = Assert.Throws<CtyException>(() => CtyJson.Encode(v, t));
        Assert.Equal(".a", e.Path.ToString());
    }

    [Theory]
    [InlineData("", "string")]
    [InlineData("{\"a\":", "[\"object\",{\"a\":\"string\"}]")]
    [InlineData("{\"a\":1}", "[\"object\",{\"a\":\"bool\"}]")]
    [InlineData("[1,2", "[\"list\",\"number\"]")]
    [InlineData("[\"x\"]", "[\"tuple\",[\"string\",\"string\"]]")]
    [InlineData("[\"x\",\"y\",\"z\"]", "[\"tuple\",[\"string\",\"string\"]]")]
    [InlineData("\"abc\"", "number")]
    [InlineData("{}", "number")]
    [InlineData("[]", "[\"map\",\"string\"]")]
    [InlineData("{\"a\":1,\"a\":2}", "[\"object\",{\"a\":\"number\"}]")]
    [InlineData("{\"a\":1,\"a\":2}", "[\"map\",\"number\"]")]
    [InlineData("{\"value\":1}", "dynamic")]
    [InlineData("{\"type\":\"string\"}", "dynamic")]
    [InlineData("{\"type\":\"string\",\"value\":\"x\",\"extra\":1}", "dynamic")]
    [InlineData("\"x\"", "dynamic")]
    [InlineData("1 2", "number")]
    public void Malformed_json_throws(string json, string typeJson)
    {
        Assert.Throws<CtyException>(() => CtyJson.Decode(json, CtyType.ParseJson(typeJson)));
    }
}
