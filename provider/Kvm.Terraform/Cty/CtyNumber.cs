using System.Globalization;
using System.Numerics;
using System.Text;

namespace Kvm.Terraform.Cty;

/// <summary>
/// An exact cty number: <c>Mantissa × 10^Exponent</c>, normalised (no trailing decimal zeros in the
/// mantissa, zero is 0×10^0) so equal numbers have equal fields; or ±infinity. cty numbers are
/// arbitrary precision and Terraform compares them by their decimal text, so a value must survive a
/// round trip without passing through binary floating point.
/// </summary>
public sealed class CtyNumber : IEquatable<CtyNumber>, IComparable<CtyNumber>
{
    // Far beyond any real value; keeps "1e999999999" from expanding into gigabytes of digits.
    internal const int MaxExponent = 100_000;

    public static readonly CtyNumber Zero = new(BigInteger.Zero, 0, 0);
    public static readonly CtyNumber One = new(BigInteger.One, 0, 0);
    public static readonly CtyNumber PositiveInfinity = new(BigInteger.Zero, 0, 1);
    public static readonly CtyNumber NegativeInfinity = new(BigInteger.Zero, 0, -1);

    private static readonly CtyNumber[] SmallInts = CreateSmallInts();

    private readonly sbyte _infinity;
    private string? _text;

    private CtyNumber(BigInteger mantissa, int exponent, sbyte infinity)
    {
        Mantissa = mantissa;
        Exponent = exponent;
        _infinity = infinity;
    }

    public BigInteger Mantissa { get; }

    public int Exponent { get; }

    public bool IsInfinity => _infinity != 0;

    public bool IsPositiveInfinity => _infinity > 0;

    public bool IsNegativeInfinity => _infinity < 0;

    public int Sign => _infinity != 0 ? _infinity : Mantissa.Sign;

    public bool IsInteger => _infinity == 0 && Exponent >= 0;

    private static CtyNumber[] CreateSmallInts()
    {
        var a = new CtyNumber[256];
        for (var i = 0; i < a.Length; i++)
        {
            a[i] = i == 0 ? Zero : i == 1 ? One : Create(i, 0);
        }
        return a;
    }

    public static CtyNumber FromInt64(long value) =>
        value is >= 0 and < 256 ? SmallInts[value] : Create(value, 0);

    public static CtyNumber FromUInt64(ulong value) => value < 256 ? SmallInts[value] : Create(value, 0);

    public static CtyNumber FromBigInteger(BigInteger value) => Create(value, 0);

    /// <summary>value × 10^exponent, normalised.</summary>
    public static CtyNumber Create(BigInteger mantissa, int exponent)
    {
        if (mantissa.IsZero)
        {
            return Zero;
        }
        if (mantissa.IsEven)
        {
            while (true)
            {
                var q = BigInteger.DivRem(mantissa, 10, out var r);
                if (!r.IsZero)
                {
                    break;
                }
                mantissa = q;
                exponent++;
            }
        }
        if (exponent > MaxExponent || exponent < -MaxExponent)
        {
            throw new CtyException($"number exponent {exponent} is out of range");
        }
        return new CtyNumber(mantissa, exponent, 0);
    }

    public static CtyNumber FromDecimal(decimal value)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        var magnitude = ((BigInteger)(uint)bits[2] << 64) | ((BigInteger)(uint)bits[1] << 32) | (uint)bits[0];
        var scale = (bits[3] >> 16) & 0xFF;
        return Create(bits[3] < 0 ? -magnitude : magnitude, -scale);
    }

    /// <summary>
    /// The number a person means by this double: its shortest round-trip decimal (0.1, not
    /// 0.1000000000000000055…). Use <see cref="FromDoubleExact"/> for the exact binary value.
    /// </summary>
    public static CtyNumber FromDouble(double value)
    {
        if (double.IsNaN(value))
        {
            throw new ArgumentException("NaN is not a cty number", nameof(value));
        }
        if (double.IsInfinity(value))
        {
            return value > 0 ? PositiveInfinity : NegativeInfinity;
        }
        if (value == Math.Floor(value) && Math.Abs(value) < 9e15)
        {
            return FromInt64((long)value);
        }
        return Parse(value.ToString("R", CultureInfo.InvariantCulture));
    }

    /// <summary>The exact value of a double (every finite double is a finite decimal).</summary>
    public static CtyNumber FromDoubleExact(double value)
    {
        if (double.IsNaN(value))
        {
            throw new ArgumentException("NaN is not a cty number", nameof(value));
        }
        if (double.IsInfinity(value))
        {
            return value > 0 ? PositiveInfinity : NegativeInfinity;
        }
        if (value == 0)
        {
            return Zero;
        }
        var bits = BitConverter.DoubleToInt64Bits(value);
        var biased = (int)((bits >> 52) & 0x7FF);
        var fraction = bits & 0xF_FFFF_FFFF_FFFFL;
        long significand;
        int exp2;
        if (biased == 0)
        {
            significand = fraction;
            exp2 = -1074;
        }
        else
        {
            significand = fraction | (1L << 52);
            exp2 = biased - 1075;
        }
        var tz = BitOperations.TrailingZeroCount(significand);
        significand >>= tz;
        exp2 += tz;
        BigInteger mantissa = value < 0 ? -significand : significand;
        if (exp2 >= 0)
        {
            return Create(mantissa << exp2, 0);
        }
        // m × 2^-k = m × 5^k × 10^-k
        return Create(mantissa * BigInteger.Pow(5, -exp2), exp2);
    }

    public static CtyNumber Parse(string text) => TryParse(Encoding.UTF8.GetBytes(text), out var n)
        ? n
        : throw new CtyException($"\"{text}\" is not a number");

    public static bool TryParse(string text, out CtyNumber result) => TryParse(Encoding.UTF8.GetBytes(text), out result);

    /// <summary>
    /// Parses decimal text as cty does (<c>[+-]digits[.digits][(e|E)[+-]digits]</c>, or
    /// <c>[+-]Inf</c>); exact, no rounding.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, out CtyNumber result)
    {
        result = Zero;
        var s = utf8;
        var negative = false;
        if (s.Length > 0 && (s[0] == '+' || s[0] == '-'))
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        if (s.SequenceEqual("Inf"u8) || s.SequenceEqual("inf"u8))
        {
            result = negative ? NegativeInfinity : PositiveInfinity;
            return true;
        }
        var i = 0;
        var intStart = i;
        while (i < s.Length && IsDigit(s[i]))
        {
            i++;
        }
        var intDigits = s[intStart..i];
        ReadOnlySpan<byte> fracDigits = default;
        if (i < s.Length && s[i] == '.')
        {
            i++;
            var fracStart = i;
            while (i < s.Length && IsDigit(s[i]))
            {
                i++;
            }
            fracDigits = s[fracStart..i];
        }
        if (intDigits.IsEmpty && fracDigits.IsEmpty)
        {
            return false;
        }
        long exp = 0;
        if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
        {
            i++;
            var expNegative = false;
            if (i < s.Length && (s[i] == '+' || s[i] == '-'))
            {
                expNegative = s[i] == '-';
                i++;
            }
            var expStart = i;
            while (i < s.Length && IsDigit(s[i]))
            {
                if (exp < 1_000_000_000)
                {
                    exp = (exp * 10) + (s[i] - '0');
                }
                i++;
            }
            if (i == expStart)
            {
                return false;
            }
            if (expNegative)
            {
                exp = -exp;
            }
        }
        if (i != s.Length)
        {
            return false;
        }

        // Leading zeros don't count toward the mantissa; trailing ones are stripped by Create.
        var totalDigits = intDigits.Length + fracDigits.Length;
        BigInteger mantissa;
        if (totalDigits <= 18)
        {
            long m = 0;
            foreach (var c in intDigits)
            {
                m = (m * 10) + (c - '0');
            }
            foreach (var c in fracDigits)
            {
                m = (m * 10) + (c - '0');
            }
            mantissa = m;
        }
        else
        {
            Span<char> chars = totalDigits <= 512 ? stackalloc char[totalDigits] : new char[totalDigits];
            for (var k = 0; k < intDigits.Length; k++)
            {
                chars[k] = (char)intDigits[k];
            }
            for (var k = 0; k < fracDigits.Length; k++)
            {
                chars[intDigits.Length + k] = (char)fracDigits[k];
            }
            mantissa = BigInteger.Parse(chars, NumberStyles.None, CultureInfo.InvariantCulture);
        }
        if (mantissa.IsZero)
        {
            return true;
        }
        var exponent = exp - fracDigits.Length;
        // Normalisation may still pull the exponent back into range, so allow slack for trailing zeros.
        if (exponent > MaxExponent + totalDigits || exponent < -MaxExponent - totalDigits)
        {
            return false;
        }
        try
        {
            result = Create(negative ? -mantissa : mantissa, (int)exponent);
        }
        catch (CtyException)
        {
            return false;
        }
        return true;
    }

    private static bool IsDigit(byte c) => (uint)(c - '0') <= 9;

    public bool TryGetInt64(out long value)
    {
        value = 0;
        if (!IsInteger || Exponent > 18)
        {
            return false;
        }
        var v = Exponent == 0 ? Mantissa : Mantissa * BigInteger.Pow(10, Exponent);
        if (v < long.MinValue || v > long.MaxValue)
        {
            return false;
        }
        value = (long)v;
        return true;
    }

    public long AsInt64() => TryGetInt64(out var v)
        ? v
        : throw new OverflowException($"{this} is not an integer in the range of Int64");

    public BigInteger AsBigInteger() => IsInteger
        ? Exponent == 0 ? Mantissa : Mantissa * BigInteger.Pow(10, Exponent)
        : throw new OverflowException($"{this} is not an integer");

    /// <summary>The nearest double (correctly rounded).</summary>
    public double AsDouble()
    {
        if (_infinity != 0)
        {
            return _infinity > 0 ? double.PositiveInfinity : double.NegativeInfinity;
        }
        if (Mantissa >= -(1L << 53) && Mantissa <= (1L << 53) && Exponent is >= -22 and <= 22)
        {
            // Both operands exact, so one IEEE operation rounds correctly.
            var m = (double)(long)Mantissa;
            return Exponent >= 0 ? m * Pow10[Exponent] : m / Pow10[-Exponent];
        }
        return double.Parse(
            Mantissa.ToString(CultureInfo.InvariantCulture) + "E" + Exponent.ToString(CultureInfo.InvariantCulture),
            NumberStyles.Float,
            CultureInfo.InvariantCulture);
    }

    private static readonly double[] Pow10 =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    /// <summary>The exact value as a <see cref="decimal"/>; throws when it has no exact decimal form.</summary>
    public decimal AsDecimal() => TryGetDecimal(out var d)
        ? d
        : throw new OverflowException($"{this} cannot be represented exactly as a System.Decimal");

    public bool TryGetDecimal(out decimal value)
    {
        value = 0;
        if (_infinity != 0 || Exponent < -28)
        {
            return false;
        }
        var m = Exponent > 0 ? Mantissa * BigInteger.Pow(10, Exponent) : Mantissa;
        var magnitude = BigInteger.Abs(m);
        if (magnitude.GetBitLength() > 96)
        {
            return false;
        }
        var lo = (int)(uint)(magnitude & uint.MaxValue);
        var mid = (int)(uint)((magnitude >> 32) & uint.MaxValue);
        var hi = (int)(uint)(magnitude >> 64);
        value = new decimal(lo, mid, hi, m.Sign < 0, (byte)Math.Max(0, -Exponent));
        return true;
    }

    /// <summary>
    /// Whether the value is a non-integer that a double holds exactly: that is when cty's msgpack
    /// encoder writes a float64 rather than a string.
    /// </summary>
    internal bool TryGetExactNonIntegerDouble(out double value)
    {
        value = 0;
        if (_infinity != 0 || Exponent >= 0)
        {
            return false;
        }
        // m × 10^-k is dyadic only if 5^k divides m; then it is (m / 5^k) × 2^-k.
        var k = -Exponent;
        if (k > 1074)
        {
            return false;
        }
        var q = BigInteger.DivRem(Mantissa, BigInteger.Pow(5, k), out var r);
        if (!r.IsZero)
        {
            return false;
        }
        var magnitude = BigInteger.Abs(q);
        var tz = (int)(magnitude.IsZero ? 0 : BigInteger.TrailingZeroCount(magnitude));
        magnitude >>= tz;
        var exp2 = tz - k;
        if (magnitude.GetBitLength() > 53 || exp2 < -1074 || magnitude.GetBitLength() + exp2 > 1024)
        {
            return false;
        }
        value = Math.ScaleB((double)(long)magnitude, exp2);
        if (q.Sign < 0)
        {
            value = -value;
        }
        return true;
    }

    /// <summary>Plain decimal text with no exponent, as cty's <c>Text('f', -1)</c> writes it.</summary>
    public override string ToString()
    {
        if (_text is not null)
        {
            return _text;
        }
        if (_infinity != 0)
        {
            return _infinity > 0 ? "+Inf" : "-Inf";
        }
        var digits = BigInteger.Abs(Mantissa).ToString(CultureInfo.InvariantCulture);
        var sb = new StringBuilder(digits.Length + Math.Abs(Exponent) + 3);
        if (Mantissa.Sign < 0)
        {
            sb.Append('-');
        }
        if (Exponent >= 0)
        {
            sb.Append(digits).Append('0', Exponent);
        }
        else
        {
            var k = -Exponent;
            if (digits.Length > k)
            {
                sb.Append(digits, 0, digits.Length - k).Append('.').Append(digits, digits.Length - k, k);
            }
            else
            {
                sb.Append("0.").Append('0', k - digits.Length).Append(digits);
            }
        }
        return _text = sb.ToString();
    }

    public bool Equals(CtyNumber? other) =>
        other is not null && _infinity == other._infinity && Exponent == other.Exponent && Mantissa.Equals(other.Mantissa);

    public override bool Equals(object? obj) => Equals(obj as CtyNumber);

    public override int GetHashCode() => HashCode.Combine(_infinity, Exponent, Mantissa);

    public int CompareTo(CtyNumber? other)
    {
        if (other is null)
        {
            return 1;
        }
        if (_infinity != 0 || other._infinity != 0)
        {
            return Rank(this).CompareTo(Rank(other));
        }
        if (Sign != other.Sign)
        {
            return Sign.CompareTo(other.Sign);
        }
        if (Sign == 0)
        {
            return 0;
        }
        // Compare orders of magnitude first so wildly different exponents never scale a BigInteger.
        var magA = Digits(Mantissa) + Exponent;
        var magB = Digits(other.Mantissa) + other.Exponent;
        if (magA != magB)
        {
            return Sign * magA.CompareTo(magB);
        }
        var e = Math.Min(Exponent, other.Exponent);
        var a = Mantissa * BigInteger.Pow(10, Exponent - e);
        var b = other.Mantissa * BigInteger.Pow(10, other.Exponent - e);
        return a.CompareTo(b);

        static int Rank(CtyNumber n) => n._infinity != 0 ? n._infinity * 2 : n.Sign;
    }

    private static long Digits(BigInteger m)
    {
        var abs = BigInteger.Abs(m);
        var d = (long)Math.Floor(BigInteger.Log10(abs)) + 1;
        // Log10 may be off by one at exact powers of ten.
        var p = BigInteger.Pow(10, (int)d - 1);
        if (abs < p)
        {
            d--;
        }
        else if (abs >= p * 10)
        {
            d++;
        }
        return d;
    }

    public static bool operator ==(CtyNumber? a, CtyNumber? b) => a is null ? b is null : a.Equals(b);

    public static bool operator !=(CtyNumber? a, CtyNumber? b) => !(a == b);

    public static bool operator <(CtyNumber a, CtyNumber b) => a.CompareTo(b) < 0;

    public static bool operator >(CtyNumber a, CtyNumber b) => a.CompareTo(b) > 0;

    public static bool operator <=(CtyNumber a, CtyNumber b) => a.CompareTo(b) <= 0;

    public static bool operator >=(CtyNumber a, CtyNumber b) => a.CompareTo(b) >= 0;
}
