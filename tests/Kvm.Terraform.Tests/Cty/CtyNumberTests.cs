using System.Numerics;
using Kvm.Terraform.Cty;

namespace Kvm.Terraform.Tests.Cty;

public class CtyNumberTests
{
    [Theory]
    [InlineData("0", "0")]
    [InlineData("-0", "0")]
    [InlineData("0.0", "0")]
    [InlineData("1", "1")]
    [InlineData("+7", "7")]
    [InlineData("1.50", "1.5")]
    [InlineData("0.1", "0.1")]
    [InlineData("-0.000001", "-0.000001")]
    [InlineData(".5", "0.5")]
    [InlineData("5.", "5")]
    [InlineData("1e3", "1000")]
    [InlineData("1.25E-2", "0.0125")]
    [InlineData("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789")]
    [InlineData("18446744073709551616", "18446744073709551616")]
    [InlineData("Inf", "+Inf")]
    [InlineData("-inf", "-Inf")]
    public void Parses_and_formats_exact_decimal_text(string input, string text)
    {
        Assert.True(CtyNumber.TryParse(input, out var n));
        Assert.Equal(text, n.ToString());
    }

    [Fact]
    public void Huge_exponents_stay_exact()
    {
        var n = CtyNumber.Parse("1e400");
        Assert.Equal("1" + new string('0', 400), n.ToString());
        Assert.Equal(BigInteger.Pow(10, 400), n.AsBigInteger());
        Assert.Equal(double.PositiveInfinity, n.AsDouble());
    }

    [Theory]
    [InlineData("")]
    [InlineData("-")]
    [InlineData(".")]
    [InlineData("1e")]
    [InlineData("1e+")]
    [InlineData("0x10")]
    [InlineData("1,5")]
    [InlineData(" 1")]
    [InlineData("NaN")]
    [InlineData("1e999999999")]
    [InlineData("1_000")]
    public void Rejects_non_numbers(string input)
    {
        Assert.False(CtyNumber.TryParse(input, out _));
        Assert.Throws<CtyException>(() => CtyNumber.Parse(input));
    }

    [Fact]
    public void Equal_values_have_equal_representations()
    {
        Assert.Equal(CtyNumber.Parse("1.0"), CtyNumber.FromInt64(1));
        Assert.Equal(CtyNumber.Parse("100"), CtyNumber.Parse("1e2"));
        Assert.Equal(CtyNumber.Parse("100").GetHashCode(), CtyNumber.Parse("1e2").GetHashCode());
        Assert.Equal(CtyNumber.FromDecimal(1.10m), CtyNumber.Parse("1.1"));
        Assert.NotEqual(CtyNumber.Parse("0.1"), CtyNumber.FromDoubleExact(0.1));
        Assert.Equal(CtyNumber.Parse("0.1"), CtyNumber.FromDouble(0.1));
    }

    [Fact]
    public void Exact_double_conversion()
    {
        Assert.Equal("0.1000000000000000055511151231257827021181583404541015625", CtyNumber.FromDoubleExact(0.1).ToString());
        Assert.Equal("0.5", CtyNumber.FromDoubleExact(0.5).ToString());
        Assert.Equal("-1024", CtyNumber.FromDoubleExact(-1024.0).ToString());
        Assert.Equal(double.Epsilon, CtyNumber.FromDoubleExact(double.Epsilon).AsDouble());
        Assert.Equal(double.MaxValue, CtyNumber.FromDoubleExact(double.MaxValue).AsDouble());
    }

    [Fact]
    public void Conversions()
    {
        Assert.Equal(long.MaxValue, CtyNumber.Parse("9223372036854775807").AsInt64());
        Assert.Equal(long.MinValue, CtyNumber.Parse("-9223372036854775808").AsInt64());
        Assert.Throws<OverflowException>(() => CtyNumber.Parse("9223372036854775808").AsInt64());
        Assert.Throws<OverflowException>(() => CtyNumber.Parse("1.5").AsInt64());
        Assert.Equal(1.5, CtyNumber.Parse("1.5").AsDouble());
        Assert.Equal(0.1, CtyNumber.Parse("0.1").AsDouble());
        Assert.Equal(1e-300, CtyNumber.Parse("1e-300").AsDouble());
        Assert.Equal(0.1m, CtyNumber.Parse("0.1").AsDecimal());
        Assert.Equal(-79228162514264337593543950335m, CtyNumber.Parse("-79228162514264337593543950335").AsDecimal());
        Assert.Throws<OverflowException>(() => CtyNumber.Parse("79228162514264337593543950336").AsDecimal());
        Assert.Throws<OverflowException>(() => CtyNumber.Parse("1e-29").AsDecimal());
        Assert.Equal(1000m, CtyNumber.Parse("1e3").AsDecimal());
    }

    [Fact]
    public void Ordering()
    {
        string[] sorted = ["-Inf", "-1e400", "-2", "-1.5", "0", "0.000001", "0.1", "1", "9.99", "10", "1e400", "+Inf"];
        var numbers = sorted.Select(CtyNumber.Parse).ToArray();
        for (var i = 0; i < numbers.Length; i++)
        {
            for (var j = 0; j < numbers.Length; j++)
            {
                Assert.Equal(Math.Sign(i.CompareTo(j)), Math.Sign(numbers[i].CompareTo(numbers[j])));
            }
        }
    }
}
