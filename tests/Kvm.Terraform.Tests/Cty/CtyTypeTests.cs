using System.Text;
using Kvm.Terraform.Cty;

namespace Kvm.Terraform.Tests.Cty;

public class CtyTypeTests
{
    [Theory]
    [InlineData("\"string\"")]
    [InlineData("\"number\"")]
    [InlineData("\"bool\"")]
    [InlineData("\"dynamic\"")]
    [InlineData("[\"list\",\"string\"]")]
    [InlineData("[\"set\",[\"map\",\"number\"]]")]
    [InlineData("[\"map\",[\"list\",\"bool\"]]")]
    [InlineData("[\"object\",{}]")]
    [InlineData("[\"object\",{\"a\":\"string\",\"b\":[\"list\",\"number\"]}]")]
    [InlineData("[\"object\",{\"a\":\"string\",\"b\":\"number\"},[\"b\"]]")]
    [InlineData("[\"object\",{\"a\":\"string\",\"b\":\"number\",\"c\":\"bool\"},[\"a\",\"c\"]]")]
    [InlineData("[\"tuple\",[]]")]
    [InlineData("[\"tuple\",[\"string\",\"dynamic\",[\"object\",{\"x\":\"bool\"}]]]")]
    public void Type_json_round_trips_byte_for_byte(string json)
    {
        var type = CtyType.ParseJson(json);
        Assert.Equal(json, Encoding.UTF8.GetString(type.ToJsonBytes()));
        Assert.Equal(type, CtyType.ParseJson(type.ToJsonBytes()));
    }

    [Fact]
    public void Object_attributes_are_written_sorted_and_optional_attributes_kept()
    {
        var type = CtyType.ParseJson("[\"object\",{\"zeta\":\"string\",\"alpha\":\"number\"},[\"zeta\"]]");
        Assert.Equal(new[] { "alpha", "zeta" }, type.AttributeNames);
        Assert.True(type.IsOptional("zeta"));
        Assert.False(type.IsOptional("alpha"));
        Assert.Equal("[\"object\",{\"alpha\":\"number\",\"zeta\":\"string\"},[\"zeta\"]]", type.ToString());
        Assert.NotEqual(type, CtyType.Object(("alpha", CtyType.Number), ("zeta", CtyType.String)));
    }

    [Fact]
    public void Schema_type_bytes_include_the_quotes()
    {
        Assert.Equal("\"string\""u8.ToArray(), CtyType.String.ToJsonBytes());
    }

    [Fact]
    public void Structural_equality_and_hashing()
    {
        var a = CtyType.Object(("x", CtyType.List(CtyType.String)), ("y", CtyType.Bool));
        var b = CtyType.ParseJson("[\"object\",{\"y\":\"bool\",\"x\":[\"list\",\"string\"]}]");
        Assert.Equal(a, b);
        Assert.True(a == b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(CtyType.List(CtyType.String), CtyType.Set(CtyType.String));
        Assert.NotEqual(CtyType.Tuple(CtyType.String), CtyType.Tuple(CtyType.String, CtyType.String));
    }

    [Fact]
    public void Dynamic_accepts_concrete_types_but_not_the_reverse()
    {
        var withDynamic = CtyType.Object(("v", CtyType.Dynamic));
        var concrete = CtyType.Object(("v", CtyType.List(CtyType.Number)));
        Assert.True(withDynamic.Accepts(concrete));
        Assert.False(concrete.Accepts(withDynamic));
        Assert.False(withDynamic.Accepts(CtyType.Object(("w", CtyType.String))));
    }

    [Fact]
    public void Attribute_lookup()
    {
        var t = CtyType.Object(("b", CtyType.Bool), ("a", CtyType.String));
        Assert.Equal(0, t.IndexOfAttribute("a"));
        Assert.Equal(-1, t.IndexOfAttribute("c"));
        Assert.Equal(CtyType.Bool, t.AttributeType("b"));
        Assert.Throws<KeyNotFoundException>(() => t.AttributeType("c"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("\"str\"")]
    [InlineData("[\"list\"]")]
    [InlineData("[\"list\",\"string\",\"string\"]")]
    [InlineData("[\"vector\",\"string\"]")]
    [InlineData("[\"object\",[\"string\"]]")]
    [InlineData("[\"object\",{\"a\":\"string\"},[\"b\"]]")]
    [InlineData("[\"object\",{\"a\":\"string\"},[\"a\"],1]")]
    [InlineData("[\"tuple\",\"string\"]")]
    [InlineData("\"string\" \"string\"")]
    [InlineData("{\"list\":\"string\"}")]
    [InlineData("[\"list\",\"string\"")]
    [InlineData("42")]
    public void Invalid_type_json_is_rejected(string json)
    {
        Assert.Throws<CtyException>(() => CtyType.ParseJson(json));
    }
}
