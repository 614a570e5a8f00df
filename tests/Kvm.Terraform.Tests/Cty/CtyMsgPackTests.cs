using System.Numerics;
using System.Text;
using Kvm.Terraform.Cty;

namespace Kvm.Terraform.Tests.Cty;

public class CtyMsgPackTests
{
    internal static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    private static string ToHex(byte[] bytes) => Convert.ToHexString(bytes);

    private static void AssertEncodes(CtyValue value, CtyType type, string hex)
    {
        Assert.Equal(ToHex(Hex(hex)), ToHex(CtyMsgPack.Encode(value, type)));
        Assert.Equal(value, CtyMsgPack.Decode(Hex(hex), type));
    }

    private static readonly CtyType Str = CtyType.String;
    private static readonly CtyType Num = CtyType.Number;

    [Theory]
    [InlineData(0L, "00")]
    [InlineData(1L, "01")]
    [InlineData(127L, "7F")]
    [InlineData(128L, "CC 80")]
    [InlineData(255L, "CC FF")]
    [InlineData(256L, "CD 01 00")]
    [InlineData(65535L, "CD FF FF")]
    [InlineData(65536L, "CE 00 01 00 00")]
    [InlineData(2147483647L, "CE 7F FF FF FF")]
    [InlineData(2147483648L, "CE 80 00 00 00")]
    [InlineData(4294967295L, "CE FF FF FF FF")]
    [InlineData(4294967296L, "CF 00 00 00 01 00 00 00 00")]
    [InlineData(long.MaxValue, "CF 7F FF FF FF FF FF FF FF")]
    [InlineData(-1L, "FF")]
    [InlineData(-32L, "E0")]
    [InlineData(-33L, "D0 DF")]
    [InlineData(-128L, "D0 80")]
    [InlineData(-129L, "D1 FF 7F")]
    [InlineData(-32768L, "D1 80 00")]
    [InlineData(-32769L, "D2 FF FF 7F FF")]
    [InlineData(-2147483648L, "D2 80 00 00 00")]
    [InlineData(-2147483649L, "D3 FF FF FF FF 7F FF FF FF")]
    [InlineData(long.MinValue, "D3 80 00 00 00 00 00 00 00")]
    public void Integers_use_the_shortest_form_with_uint_codes_for_non_negatives(long n, string hex)
    {
        AssertEncodes(CtyValue.Number(n), Num, hex);
    }

    [Theory]
    [InlineData("D0 05", 5L)]
    [InlineData("D1 00 05", 5L)]
    [InlineData("D2 00 00 00 05", 5L)]
    [InlineData("D3 00 00 00 00 00 00 00 05", 5L)]
    [InlineData("CC 05", 5L)]
    [InlineData("CF 00 00 00 00 00 00 00 05", 5L)]
    [InlineData("D3 FF FF FF FF FF FF FF FB", -5L)]
    [InlineData("CA 40 A0 00 00", 5L)]
    [InlineData("CB 40 14 00 00 00 00 00 00", 5L)]
    [InlineData("A1 35", 5L)]
    [InlineData("A3 35 65 30", 5L)]
    [InlineData("C4 01 35", 5L)]
    public void Any_number_form_decodes(string hex, long expected)
    {
        Assert.Equal(CtyValue.Number(expected), CtyMsgPack.Decode(Hex(hex), Num));
    }

    [Fact]
    public void Uint64_above_int64_decodes_and_reencodes_as_a_string()
    {
        var v = CtyMsgPack.Decode(Hex("CF FF FF FF FF FF FF FF FF"), Num);
        Assert.Equal(ulong.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), v.AsNumber().ToString());
        AssertEncodes(CtyValue.Number(BigInteger.Pow(2, 63)), Num, "B3" + ToHex(Encoding.ASCII.GetBytes("9223372036854775808")));
        AssertEncodes(CtyValue.Number(BigInteger.Pow(2, 64)), Num, "B4" + ToHex(Encoding.ASCII.GetBytes("18446744073709551616")));
    }

    [Theory]
    [InlineData("0.5", "CB 3F E0 00 00 00 00 00 00")]
    [InlineData("1.25", "CB 3F F4 00 00 00 00 00 00")]
    [InlineData("-2.5", "CB C0 04 00 00 00 00 00 00")]
    [InlineData("0.1", "A3 30 2E 31")]
    [InlineData("1.1", "A3 31 2E 31")]
    [InlineData("-0.3", "A4 2D 30 2E 33")]
    public void Non_integers_are_float64_only_when_exact_else_decimal_text(string number, string hex)
    {
        AssertEncodes(CtyValue.Number(CtyNumber.Parse(number)), Num, hex);
    }

    [Fact]
    public void Float64_values_round_trip_bit_for_bit()
    {
        // 0.1 as a double is not 0.1: keep its exact value so it goes back out as the same float64.
        var bytes = Hex("CB 3F B9 99 99 99 99 99 9A");
        var v = CtyMsgPack.Decode(bytes, Num);
        Assert.Equal("0.1000000000000000055511151231257827021181583404541015625", v.AsNumber().ToString());
        Assert.Equal(ToHex(bytes), ToHex(CtyMsgPack.Encode(v, Num)));
        Assert.Equal(0.1, v.AsDouble());

        var tiny = CtyMsgPack.Decode(Hex("CB 00 00 00 00 00 00 00 01"), Num);
        Assert.Equal(double.Epsilon, tiny.AsDouble());
        Assert.Equal("CB0000000000000001", ToHex(CtyMsgPack.Encode(tiny, Num)));

        Assert.Equal(CtyValue.Number(CtyNumber.Parse("0.25")), CtyMsgPack.Decode(Hex("CA 3E 80 00 00"), Num));
    }

    [Fact]
    public void Infinity_is_float64()
    {
        AssertEncodes(CtyValue.Number(CtyNumber.PositiveInfinity), Num, "CB 7F F0 00 00 00 00 00 00");
        AssertEncodes(CtyValue.Number(CtyNumber.NegativeInfinity), Num, "CB FF F0 00 00 00 00 00 00");
        Assert.Throws<CtyException>(() => CtyMsgPack.Decode(Hex("CB 7F F8 00 00 00 00 00 00"), Num));
    }

    [Fact]
    public void Huge_and_precise_numbers_travel_as_strings()
    {
        var big = CtyValue.Number(CtyNumber.Parse("1e400"));
        var text = "1" + new string('0', 400);
        AssertEncodes(big, Num, "DA 01 91" + ToHex(Encoding.ASCII.GetBytes(text)));
        // Terraform may also send the exponent form.
        Assert.Equal(big, CtyMsgPack.Decode(Hex("A5" + ToHex("1e400"u8.ToArray())), Num));

        var precise = CtyNumber.Parse("3.14159265358979323846264338327950288419716939937510");
        var decoded = CtyMsgPack.Decode(CtyMsgPack.Encode(CtyValue.Number(precise), Num), Num);
        Assert.Equal("3.1415926535897932384626433832795028841971693993751", decoded.AsNumber().ToString());
    }

    [Fact]
    public void Primitives_and_null()
    {
        AssertEncodes(CtyValue.True, CtyType.Bool, "C3");
        AssertEncodes(CtyValue.False, CtyType.Bool, "C2");
        AssertEncodes(CtyValue.Null(Str), Str, "C0");
        AssertEncodes(CtyValue.Null(Num), Num, "C0");
        AssertEncodes(CtyValue.Null(CtyType.List(Str)), CtyType.List(Str), "C0");
        AssertEncodes(CtyValue.String(""), Str, "A0");
        AssertEncodes(CtyValue.String("hi"), Str, "A2 68 69");
        AssertEncodes(CtyValue.String("é€😀"), Str, "A9 C3A9 E282AC F09F9880");
    }

    [Theory]
    [InlineData(31, "BF")]
    [InlineData(32, "D9 20")]
    [InlineData(255, "D9 FF")]
    [InlineData(256, "DA 01 00")]
    [InlineData(65535, "DA FF FF")]
    [InlineData(65536, "DB 00 01 00 00")]
    public void String_headers_at_each_width_boundary_count_utf8_bytes(int byteLength, string header)
    {
        // Multibyte characters first, so char count and byte count differ.
        var sb = new StringBuilder();
        var bytes = 0;
        while (bytes + 4 <= byteLength - 3)
        {
            sb.Append("😀é");
            bytes += 6;
        }
        while (bytes < byteLength)
        {
            sb.Append('x');
            bytes++;
        }
        var s = sb.ToString();
        Assert.Equal(byteLength, Encoding.UTF8.GetByteCount(s));
        AssertEncodes(CtyValue.String(s), Str, header + ToHex(Encoding.UTF8.GetBytes(s)));
    }

    [Fact]
    public void Strings_may_arrive_as_binary()
    {
        Assert.Equal(CtyValue.String("ab"), CtyMsgPack.Decode(Hex("C4 02 61 62"), Str));
        Assert.Equal(CtyValue.String("ab"), CtyMsgPack.Decode(Hex("C5 00 02 61 62"), Str));
        Assert.Equal(CtyValue.String("ab"), CtyMsgPack.Decode(Hex("DB 00 00 00 02 61 62"), Str));
    }

    [Fact]
    public void Collections_and_structures()
    {
        AssertEncodes(CtyValue.List(Str, CtyValue.String("a"), CtyValue.String("b")), CtyType.List(Str), "92 A1 61 A1 62");
        AssertEncodes(CtyValue.List(Str), CtyType.List(Str), "90");
        AssertEncodes(CtyValue.Set(Num, CtyValue.Number(1), CtyValue.Number(2)), CtyType.Set(Num), "92 01 02");
        AssertEncodes(
            CtyValue.Map(Num, [("y", CtyValue.Number(2)), ("x", CtyValue.Number(1))]),
            CtyType.Map(Num),
            "82 A1 78 01 A1 79 02");
        AssertEncodes(CtyValue.Tuple(CtyValue.String("a"), CtyValue.True), CtyType.Tuple(Str, CtyType.Bool), "92 A1 61 C3");

        var objType = CtyType.Object(("b", Num), ("a", Str), ("c", CtyType.Bool));
        var obj = CtyValue.Object(objType, [("a", CtyValue.String("x")), ("b", CtyValue.Number(1))]);
        AssertEncodes(obj, objType, "83 A1 61 A1 78 A1 62 01 A1 63 C0");
        AssertEncodes(CtyValue.EmptyObject, CtyType.EmptyObject, "80");
    }

    [Fact]
    public void Object_keys_decode_in_any_order()
    {
        var objType = CtyType.Object(("a", Str), ("b", Num));
        var v = CtyMsgPack.Decode(Hex("82 A1 62 01 A1 61 A1 78"), objType);
        Assert.Equal("x", v.GetAttr("a").AsString());
        Assert.Equal(1, v.GetAttr("b").AsInt64());
    }

    [Fact]
    public void Sixteen_and_more_elements_use_array16_and_map16()
    {
        var items = Enumerable.Range(0, 16).Select(i => CtyValue.Number(i)).ToArray();
        var hex = "DC 00 10 " + string.Concat(Enumerable.Range(0, 16).Select(i => i.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));
        AssertEncodes(CtyValue.List(Num, items), CtyType.List(Num), hex);

        var entries = Enumerable.Range(0, 16).Select(i => new KeyValuePair<string, CtyValue>(((char)('a' + i)).ToString(), CtyValue.True));
        var mapHex = "DE 00 10 " + string.Concat(Enumerable.Range(0, 16).Select(i => $"A1{0x61 + i:X2}C3"));
        AssertEncodes(CtyValue.Map(CtyType.Bool, entries), CtyType.Map(CtyType.Bool), mapHex);
    }

    [Fact]
    public void Nested_values_with_nulls_everywhere_round_trip()
    {
        var disk = CtyType.Object(("size", Num), ("tags", CtyType.Set(Str)), ("opts", CtyType.Map(CtyType.List(CtyType.Bool))));
        var vm = CtyType.Object(
            ("name", Str),
            ("disks", CtyType.Map(disk)),
            ("nets", CtyType.List(CtyType.Object(("bridge", Str), ("vlan", Num)))),
            ("pair", CtyType.Tuple(Str, Num)),
            ("extra", CtyType.Dynamic));
        var value = CtyValue.Object(vm,
        [
            ("name", CtyValue.String("web")),
            ("disks", CtyValue.Map(disk,
            [
                ("scsi0", CtyValue.Object(disk, [("size", CtyValue.Number(CtyNumber.Parse("10.5"))), ("tags", CtyValue.Set(Str, CtyValue.String("ssd")))])),
                ("scsi1", CtyValue.Null(disk)),
                ("virtio0", CtyValue.Object(disk,
                [
                    ("opts", CtyValue.Map(CtyType.List(CtyType.Bool), [("x", CtyValue.List(CtyType.Bool, CtyValue.True, CtyValue.Null(CtyType.Bool)))])),
                    ("tags", CtyValue.Set(Str)),
                ])),
            ])),
            ("nets", CtyValue.List(CtyType.Object(("bridge", Str), ("vlan", Num)))),
            ("pair", CtyValue.Tuple(CtyValue.Null(Str), CtyValue.Number(-1))),
            ("extra", CtyValue.Object(("k", CtyValue.List(Num, CtyValue.Number(1))))),
        ]);
        var bytes = CtyMsgPack.Encode(value, vm);
        var decoded = CtyMsgPack.Decode(bytes, vm);
        Assert.Equal(value, decoded);
        Assert.True(decoded.IsWhollyKnown);
        Assert.Equal(bytes, CtyMsgPack.Encode(decoded, vm));
        Assert.True(decoded.GetAttr("disks").Index("scsi1").IsNull);
        Assert.True(decoded.GetAttr("disks").Index("virtio0").GetAttr("size").IsNull);
    }

    [Fact]
    public void Unknowns_of_every_type_encode_as_ext0()
    {
        CtyType[] types =
        [
            Str, Num, CtyType.Bool, CtyType.List(Str), CtyType.Set(Num), CtyType.Map(Str),
            CtyType.Object(("a", Str)), CtyType.Tuple(Str, Num), CtyType.Dynamic,
        ];
        foreach (var t in types)
        {
            AssertEncodes(CtyValue.Unknown(t), t, "D4 00 00");
        }
    }

    [Fact]
    public void Unknowns_nested_in_known_values()
    {
        var t = CtyType.Object(("id", Str), ("ips", CtyType.List(Str)), ("name", Str));
        var v = CtyValue.Object(t,
        [
            ("id", CtyValue.Unknown(Str)),
            ("ips", CtyValue.List(Str, CtyValue.String("10.0.0.1"), CtyValue.Unknown(Str))),
            ("name", CtyValue.String("a")),
        ]);
        AssertEncodes(v, t, "83 A2 6964 D4 00 00 A3 697073 92 A8 31302E302E302E31 D4 00 00 A4 6E616D65 A1 61");
        Assert.False(v.IsWhollyKnown);
        Assert.True(v.IsKnown);
    }

    [Theory]
    [InlineData("D4 00 00")]
    [InlineData("D4 05 00")]
    [InlineData("D4 0C 00")]
    [InlineData("D5 01 00 00")]
    [InlineData("D6 7F 00 00 00 00")]
    [InlineData("D7 FF 00 00 00 00 00 00 00 00")]
    [InlineData("D8 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")]
    [InlineData("C7 00 00")]
    [InlineData("C7 02 07 AA BB")]
    [InlineData("C8 00 01 09 00")]
    [InlineData("C9 00 00 00 00 00")]
    public void Any_extension_decodes_as_unknown(string hex)
    {
        var v = CtyMsgPack.Decode(Hex(hex), Str);
        Assert.False(v.IsKnown);
        Assert.True(v.Refinements.IsEmpty);
        Assert.Equal(CtyType.String, v.Type);
    }

    [Fact]
    public void Refined_unknowns_round_trip()
    {
        AssertEncodes(CtyValue.Unknown(Str, CtyRefinements.NotNullOnly), Str, "C7 03 0C 81 01 C2");
        AssertEncodes(
            CtyValue.Unknown(Str, new CtyRefinements { NotNull = true, StringPrefix = "ab" }),
            Str,
            "C7 07 0C 82 01 C2 02 A2 61 62");
        AssertEncodes(
            CtyValue.Unknown(Num, new CtyRefinements
            {
                NumberLowerBound = new(CtyNumber.Zero, true),
                NumberUpperBound = new(CtyNumber.FromInt64(10), false),
            }),
            Num,
            "C7 09 0C 82 03 92 00 C3 04 92 0A C2");
        AssertEncodes(
            CtyValue.Unknown(CtyType.List(Str), new CtyRefinements { LengthLowerBound = 1, LengthUpperBound = 5 }),
            CtyType.List(Str),
            "C7 05 0C 82 05 01 06 05");
        // A four-byte body uses fixext4.
        AssertEncodes(CtyValue.Unknown(CtyType.Set(Num), new CtyRefinements { LengthLowerBound = 200 }), CtyType.Set(Num), "D6 0C 81 05 CC C8");
        AssertEncodes(
            CtyValue.Unknown(Num, new CtyRefinements { NotNull = true, NumberLowerBound = new(CtyNumber.Parse("0.5"), false) }),
            Num,
            "C7 0F 0C 82 01 C2 03 92 CB 3FE0000000000000 C2");
    }

    [Fact]
    public void Refinement_decoding_is_lenient_where_cty_is()
    {
        // ext32 with refinements, an unknown future key 9 (skipped, including nested content), trailing padding.
        var v = CtyMsgPack.Decode(Hex("C9 00 00 00 0B 0C 82 09 92 A1 61 81 01 02 01 C2 00"), Str);
        Assert.False(v.IsKnown);
        Assert.True(v.Refinements.NotNull);
        // "definitely null" collapses to a known null.
        Assert.True(CtyMsgPack.Decode(Hex("C7 03 0C 81 01 C3"), Str).IsNull);
        // Refinements on dynamic are ignored.
        Assert.Equal(CtyValue.DynamicUnknown, CtyMsgPack.Decode(Hex("C7 03 0C 81 01 C2"), CtyType.Dynamic));
        // Number bounds may use any number form.
        var n = CtyMsgPack.Decode(Hex("C7 08 0C 81 03 92 A3 31 2E 35 C3"), Num);
        Assert.Equal(CtyNumber.Parse("1.5"), n.Refinements.NumberLowerBound!.Value);
    }

    [Theory]
    [InlineData("C7 04 0C 81 02 A1 61", "number")]
    [InlineData("C7 03 0C 81 05 01", "number")]
    [InlineData("C7 03 0C 81 01 01", "number")]
    [InlineData("C7 03 0C 81 03 01", "number")]
    [InlineData("C7 05 0C 81 03 91 00 C3", "number")]
    [InlineData("C7 03 0C 91 01 C2", "number")]
    [InlineData("C7 03 0C 82 01 C2", "number")]
    public void Malformed_refinements_are_rejected(string hex, string typeName)
    {
        var e = Assert.Throws<CtyException>(() => CtyMsgPack.Decode(Hex(hex), CtyType.ParseJson($"\"{typeName}\"")));
        Assert.Contains("refinement", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dynamic_values_are_wrapped_with_their_type_json()
    {
        var typeJson = ToHex("\"string\""u8.ToArray());
        AssertEncodes(CtyValue.String("hi"), CtyType.Dynamic, $"92 C4 08 {typeJson} A2 68 69");
        // The type may arrive as str instead of bin.
        Assert.Equal(CtyValue.String("hi"), CtyMsgPack.Decode(Hex($"92 A8 {typeJson} A2 68 69"), CtyType.Dynamic));
        AssertEncodes(CtyValue.DynamicNull, CtyType.Dynamic, "C0");
        AssertEncodes(CtyValue.DynamicUnknown, CtyType.Dynamic, "D4 00 00");
        // Typed null and typed unknown keep their type inside the wrapper.
        AssertEncodes(CtyValue.Null(Str), CtyType.Dynamic, $"92 C4 08 {typeJson} C0");
        AssertEncodes(CtyValue.Unknown(Str), CtyType.Dynamic, $"92 C4 08 {typeJson} D4 00 00");

        var listJson = "[\"list\",\"number\"]";
        var list = CtyValue.List(Num, CtyValue.Number(1), CtyValue.Number(2));
        AssertEncodes(list, CtyType.Dynamic, $"92 C4 {listJson.Length:X2} {ToHex(Encoding.UTF8.GetBytes(listJson))} 92 01 02");

        var t = CtyType.Object(("v", CtyType.Dynamic));
        var v = CtyMsgPack.Decode(Hex($"81 A1 76 92 C4 08 {typeJson} A1 78"), t);
        Assert.Equal(CtyType.String, v.GetAttr("v").Type);
        Assert.Equal("x", v.GetAttr("v").AsString());
    }

    [Fact]
    public void Unknown_object_attributes_and_wrong_counts_are_rejected()
    {
        var t = CtyType.Object(("a", Str), ("b", Num));
        var missing = Assert.Throws<CtyException>(() => CtyMsgPack.Decode(Hex("81 A1 61 A1 78"), t));
        Assert.Contains("an object with 2 attributes is required (1 given)", missing.Message, StringComparison.Ordinal);
        var extra = Assert.Throws<CtyException>(() => CtyMsgPack.Decode(Hex("82 A1 61 A1 78 A1 7A 01"), t));
        Assert.Contains("unsupported attribute \"z\"", extra.Message, StringComparison.Ordinal);
        Assert.Throws<CtyException>(() => CtyMsgPack.Decode(Hex("82 A1 61 A1 78 A1 61 A1 78"), t));
    }

    [Theory]
    [InlineData("", "string")]
    [InlineData("A3 61 62", "string")]
    [InlineData("D9", "string")]
    [InlineData("DA 00", "string")]
    [InlineData("CD 01", "number")]
    [InlineData("CF 00 00", "number")]
    [InlineData("CB 3F", "number")]
    [InlineData("DC FF FF", "[\"list\",\"string\"]")]
    [InlineData("DD FF FF FF FF", "[\"list\",\"string\"]")]
    [InlineData("DF 7F FF FF FF", "[\"map\",\"string\"]")]
    [InlineData("92 A1 61", "[\"list\",\"string\"]")]
    [InlineData("C7 05 0C 81", "string")]
    [InlineData("C9 FF FF FF FF 00", "string")]
    [InlineData("A1 61 A1 62", "string")]
    [InlineData("01", "string")]
    [InlineData("A1 61", "number")]
    [InlineData("A1 61", "bool")]
    [InlineData("01", "bool")]
    [InlineData("A1 61", "[\"list\",\"string\"]")]
    [InlineData("91 A1 61", "[\"map\",\"string\"]")]
    [InlineData("91 A1 61", "[\"object\",{\"a\":\"string\"}]")]
    [InlineData("81 01 A1 61", "[\"map\",\"string\"]")]
    [InlineData("81 01 A1 61", "[\"object\",{\"a\":\"string\"}]")]
    [InlineData("92 A1 61 A1 62", "[\"tuple\",[\"string\"]]")]
    [InlineData("90", "[\"tuple\",[\"string\"]]")]
    [InlineData("C1", "string")]
    [InlineData("A2 C3 28", "string")]
    [InlineData("A1 61", "dynamic")]
    [InlineData("93 C4 08 22737472696E6722 A1 61 C0", "dynamic")]
    [InlineData("92 C4 05 22737472 A1 61", "dynamic")]
    [InlineData("92 01 A1 61", "dynamic")]
    [InlineData("82 A1 61 A1 61 A1 61 A1 62", "[\"map\",\"string\"]")]
    public void Malformed_input_throws_a_clear_exception(string hex, string typeJson)
    {
        var e = Assert.Throws<CtyException>(() => CtyMsgPack.Decode(Hex(hex), CtyType.ParseJson(typeJson)));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Fact]
    public void Errors_name_the_path()
    {
        var disk = CtyType.Object(("size", Num));
        var t = CtyType.Object(("disks", CtyType.Map(disk)), ("ips", CtyType.List(Str)));
        var bytes = Hex("82 A5 6469736B73 81 A5 7363736930 81 A4 73697A65 A1 78 A3 697073 90");
        var e = Assert.Throws<CtyException>(() => CtyMsgPack.Decode(bytes, t));
        Assert.Equal(".disks[\"scsi0\"].size", e.Path.ToString());
        Assert.StartsWith("at .disks[\"scsi0\"].size: number is required", e.Message, StringComparison.Ordinal);

        var e2 = Assert.Throws<CtyException>(() => CtyMsgPack.Decode(Hex("82 A5 6469736B73 80 A3 697073 92 A1 61 01"), t));
        Assert.Equal(".ips[1]", e2.Path.ToString());
        Assert.Equal(new[] { CtyPathStep.Attribute("ips"), CtyPathStep.Key(1) }, e2.Path.Steps());
    }

    [Fact]
    public void Deeply_nested_dynamic_wrappers_fail_without_overflowing_the_stack()
    {
        var wrapper = Hex("92 C4 09" + ToHex("\"dynamic\""u8.ToArray()));
        var bytes = new List<byte>();
        for (var i = 0; i < 100_000; i++)
        {
            bytes.AddRange(wrapper);
        }
        bytes.Add(0xC0);
        var e = Assert.Throws<CtyException>(() => CtyMsgPack.Decode(bytes.ToArray(), CtyType.Dynamic));
        Assert.Contains("nested too deeply", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Encoding_checks_the_value_against_the_schema_type()
    {
        var t = CtyType.Object(("a", Str));
        Assert.Throws<CtyException>(() => CtyMsgPack.Encode(CtyValue.Number(1), Str));
        Assert.Throws<CtyException>(() => CtyMsgPack.Encode(CtyValue.Object(("b", CtyValue.String("x"))), t));
        var e = Assert.Throws<CtyException>(() => CtyMsgPack.Encode(
            CtyValue.Object(("a", CtyValue.Number(1))), t));
        Assert.Equal(".a", e.Path.ToString());
        Assert.Throws<CtyException>(() => CtyMsgPack.Encode(CtyValue.String("\ud800"), Str));
    }

    [Fact]
    public void Sets_decode_without_duplicates()
    {
        var v = CtyMsgPack.Decode(Hex("93 A1 61 A1 62 A1 61"), CtyType.Set(Str));
        Assert.Equal(2, v.Count);
        Assert.Equal(CtyValue.Set(Str, CtyValue.String("b"), CtyValue.String("a")), v);
    }
}
