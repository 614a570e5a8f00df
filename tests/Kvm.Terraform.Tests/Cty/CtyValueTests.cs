using Kvm.Terraform.Cty;

namespace Kvm.Terraform.Tests.Cty;

public class CtyValueTests
{
    private static readonly CtyType Str = CtyType.String;

    [Fact]
    public void Set_equality_ignores_order_and_duplicates_collapse()
    {
        var a = CtyValue.Set(Str, CtyValue.String("x"), CtyValue.String("y"), CtyValue.String("z"));
        var b = CtyValue.Set(Str, CtyValue.String("z"), CtyValue.String("x"), CtyValue.String("y"), CtyValue.String("x"));
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.Equal(3, b.Count);
        Assert.NotEqual(a, CtyValue.Set(Str, CtyValue.String("x"), CtyValue.String("y")));
        Assert.NotEqual(a, CtyValue.List(Str, CtyValue.String("x"), CtyValue.String("y"), CtyValue.String("z")));

        var many = Enumerable.Range(0, 20).Select(i => CtyValue.Number(i)).ToArray();
        var big1 = CtyValue.Set(CtyType.Number, many);
        var big2 = CtyValue.Set(CtyType.Number, many.Reverse().Concat(many));
        Assert.Equal(big1, big2);
        Assert.Equal(20, big2.Count);
    }

    [Fact]
    public void List_equality_is_ordered()
    {
        Assert.NotEqual(
            CtyValue.List(Str, CtyValue.String("a"), CtyValue.String("b")),
            CtyValue.List(Str, CtyValue.String("b"), CtyValue.String("a")));
    }

    [Fact]
    public void Null_unknown_and_known_are_distinct_and_typed()
    {
        Assert.NotEqual(CtyValue.Null(Str), CtyValue.Unknown(Str));
        Assert.NotEqual(CtyValue.Null(Str), CtyValue.Null(CtyType.Number));
        Assert.Equal(CtyValue.Unknown(Str), CtyValue.Unknown(Str));
        Assert.NotEqual(CtyValue.Unknown(Str), CtyValue.Unknown(Str, CtyRefinements.NotNullOnly));
        Assert.Equal(CtyValue.Unknown(Str, new CtyRefinements { StringPrefix = "a" }), CtyValue.Unknown(Str, new CtyRefinements { StringPrefix = "a" }));
        Assert.NotEqual(CtyValue.String(""), CtyValue.Null(Str));
        Assert.True(CtyValue.Null(Str).IsKnown);
        Assert.True(CtyValue.Null(Str).IsWhollyKnown);
        Assert.False(CtyValue.Unknown(Str).IsWhollyKnown);
        Assert.Throws<InvalidOperationException>(() => CtyValue.Null(Str).AsString());
        Assert.Throws<InvalidOperationException>(() => CtyValue.Unknown(Str).AsString());
        Assert.Throws<InvalidOperationException>(() => CtyValue.Number(1).AsString());
    }

    [Fact]
    public void Number_equality_is_by_value()
    {
        Assert.Equal(CtyValue.Number(CtyNumber.Parse("1.0")), CtyValue.Number(1));
        Assert.Equal(CtyValue.Number(0.5), CtyValue.Number(CtyNumber.Parse("0.5")));
        Assert.Equal(CtyValue.Number(12.25m), CtyValue.Number(CtyNumber.Parse("12.250")));
    }

    [Fact]
    public void Objects_always_hold_every_attribute()
    {
        var t = CtyType.Object(("a", Str), ("b", CtyType.List(Str)));
        var v = CtyValue.Object(t, [("a", CtyValue.String("x"))]);
        Assert.Equal(CtyValue.Null(CtyType.List(Str)), v.GetAttr("b"));
        Assert.Equal(2, v.Entries.Count());
        Assert.Throws<ArgumentException>(() => CtyValue.Object(t, [("c", CtyValue.String("x"))]));
        Assert.Throws<ArgumentException>(() => CtyValue.Object(t, [("a", CtyValue.Number(1))]));
        Assert.Throws<ArgumentException>(() => CtyValue.List(Str, CtyValue.Number(1)));
    }

    [Fact]
    public void Walking_through_null_and_unknown_propagates()
    {
        var disk = CtyType.Object(("size", CtyType.Number));
        var t = CtyType.Object(("disks", CtyType.Map(disk)), ("nics", CtyType.List(disk)), ("pair", CtyType.Tuple(Str, CtyType.Bool)));
        var nullObj = CtyValue.Null(t);
        Assert.Equal(CtyValue.Null(CtyType.Number), nullObj.GetAttr("disks").Index("scsi0").GetAttr("size"));
        var unknown = CtyValue.Unknown(t);
        Assert.Equal(CtyValue.Unknown(CtyType.Number), unknown.GetAttr("nics").Index(3).GetAttr("size"));
        Assert.Equal(CtyValue.Unknown(CtyType.Bool), unknown.GetAttr("pair").Index(1));

        var v = CtyValue.Object(t,
        [
            ("disks", CtyValue.Map(disk, [("scsi0", CtyValue.Object(disk, [("size", CtyValue.Number(10))]))])),
            ("nics", CtyValue.List(disk, CtyValue.Object(disk, [("size", CtyValue.Number(2))]))),
        ]);
        Assert.Equal(10, v.Walk(CtyPath.Root.Attribute("disks").Key("scsi0").Attribute("size")).AsInt64());
        Assert.Equal(2, v.Walk(CtyPath.Root.Attribute("nics").Key(0).Attribute("size")).AsInt64());
        Assert.True(v.GetAttr("disks").Index("missing").IsNull);
        Assert.Throws<ArgumentOutOfRangeException>(() => v.GetAttr("nics").Index(1));
        Assert.Throws<KeyNotFoundException>(() => v.GetAttr("nope"));
        Assert.Equal(".disks[\"scsi0\"].size", CtyPath.Root.Attribute("disks").Key("scsi0").Attribute("size").ToString());
    }

    [Fact]
    public void WithAttr_replaces_one_attribute()
    {
        var t = CtyType.Object(("id", Str), ("name", Str));
        var planned = CtyValue.Object(t, [("name", CtyValue.String("web"))]);
        var withUnknown = planned.WithAttr("id", CtyValue.Unknown(Str));
        Assert.True(planned.GetAttr("id").IsNull);
        Assert.False(withUnknown.GetAttr("id").IsKnown);
        Assert.Equal("web", withUnknown.GetAttr("name").AsString());
        Assert.False(withUnknown.IsWhollyKnown);
        Assert.Throws<ArgumentException>(() => planned.WithAttr("id", CtyValue.Number(1)));
    }

    [Fact]
    public void Maps_are_keyed_by_string()
    {
        var m = CtyValue.Map(CtyType.Number, [("b", CtyValue.Number(2)), ("a", CtyValue.Number(1))]);
        Assert.Equal(["a", "b"], m.Entries.Select(e => e.Key).ToArray());
        Assert.True(m.TryGetValue("b", out var b));
        Assert.Equal(2, b.AsInt64());
        Assert.Equal(m, CtyValue.Map(CtyType.Number, [("a", CtyValue.Number(1)), ("b", CtyValue.Number(2))]));
        Assert.Throws<ArgumentException>(() => CtyValue.Map(CtyType.Number, [("a", CtyValue.Number(1)), ("a", CtyValue.Number(2))]));
    }

    [Fact]
    public void Refinements_must_fit_the_type()
    {
        Assert.Throws<CtyException>(() => CtyValue.Unknown(CtyType.Number, new CtyRefinements { StringPrefix = "x" }));
        Assert.Throws<CtyException>(() => CtyValue.Unknown(Str, new CtyRefinements { LengthLowerBound = 1 }));
        Assert.Throws<CtyException>(() => CtyValue.Unknown(CtyType.Dynamic, CtyRefinements.NotNullOnly));
    }

    [Fact]
    public void ToString_is_readable()
    {
        var v = CtyValue.Object(
            ("a", CtyValue.String("x\"y")),
            ("b", CtyValue.List(CtyType.Number, CtyValue.Number(1), CtyValue.Unknown(CtyType.Number))),
            ("c", CtyValue.Null(CtyType.Bool)));
        Assert.Equal("{ a = \"x\\\"y\", b = [1, (known after apply)], c = null }", v.ToString());
    }
}
