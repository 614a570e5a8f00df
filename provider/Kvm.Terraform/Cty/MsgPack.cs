using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace Kvm.Terraform.Cty;

/// <summary>Minimal msgpack reader over a span; every read checks bounds and throws <see cref="CtyException"/>.</summary>
internal ref struct MsgPackReader(ReadOnlySpan<byte> data)
{
    internal static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public readonly int Position => _pos;

    public readonly bool End => _pos >= _data.Length;

    public readonly byte PeekCode() => _pos < _data.Length ? _data[_pos] : throw Truncated();

    public static bool IsExt(byte code) => code is (>= 0xD4 and <= 0xD8) or (>= 0xC7 and <= 0xC9);

    public static bool IsStr(byte code) => code is (>= 0xA0 and <= 0xBF) or 0xD9 or 0xDA or 0xDB;

    public static bool IsBin(byte code) => code is 0xC4 or 0xC5 or 0xC6;

    public static bool IsArray(byte code) => code is (>= 0x90 and <= 0x9F) or 0xDC or 0xDD;

    public static bool IsMap(byte code) => code is (>= 0x80 and <= 0x8F) or 0xDE or 0xDF;

    public static string Describe(byte code) => code switch
    {
        <= 0x7F or >= 0xE0 => "integer",
        <= 0x8F => "map",
        <= 0x9F => "array",
        <= 0xBF => "string",
        0xC0 => "nil",
        0xC1 => "reserved code 0xc1",
        0xC2 or 0xC3 => "bool",
        0xC4 or 0xC5 or 0xC6 => "binary",
        0xC7 or 0xC8 or 0xC9 or (>= 0xD4 and <= 0xD8) => "extension",
        0xCA or 0xCB => "float",
        (>= 0xCC and <= 0xD3) => "integer",
        0xD9 or 0xDA or 0xDB => "string",
        0xDC or 0xDD => "array",
        _ => "map",
    };

    public bool TryReadNil()
    {
        if (PeekCode() != 0xC0)
        {
            return false;
        }
        _pos++;
        return true;
    }

    public bool ReadBool()
    {
        var c = PeekCode();
        if (c is not (0xC2 or 0xC3))
        {
            throw new CtyException($"bool is required, found {Describe(c)}");
        }
        _pos++;
        return c == 0xC3;
    }

    /// <summary>Bytes of a str or bin item (Terraform's decoder accepts either where a string is expected).</summary>
    public ReadOnlySpan<byte> ReadStringBytes(string what = "string")
    {
        var c = PeekCode();
        int length;
        if (c is >= 0xA0 and <= 0xBF)
        {
            _pos++;
            length = c & 0x1F;
        }
        else
        {
            length = c switch
            {
                0xD9 or 0xC4 => Take(1, c)[0],
                0xDA or 0xC5 => BinaryPrimitives.ReadUInt16BigEndian(Take(2, c)),
                0xDB or 0xC6 => Length(BinaryPrimitives.ReadUInt32BigEndian(Take(4, c))),
                _ => throw new CtyException($"{what} is required, found {Describe(c)}"),
            };
        }
        return Take(length);
    }

    public string ReadString(string what = "string")
    {
        var bytes = ReadStringBytes(what);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new CtyException($"{what} is not valid UTF-8");
        }
    }

    public int ReadArrayHeader(string what)
    {
        var c = PeekCode();
        int count;
        if (c is >= 0x90 and <= 0x9F)
        {
            _pos++;
            count = c & 0x0F;
        }
        else if (c == 0xDC)
        {
            count = BinaryPrimitives.ReadUInt16BigEndian(Take(2, c));
        }
        else if (c == 0xDD)
        {
            count = Length(BinaryPrimitives.ReadUInt32BigEndian(Take(4, c)));
        }
        else
        {
            throw new CtyException($"{what} is required, found {Describe(c)}");
        }
        // Each element takes at least one byte: reject absurd counts before anyone allocates for them.
        if (count > _data.Length - _pos)
        {
            throw Truncated();
        }
        return count;
    }

    public int ReadMapHeader(string what)
    {
        var c = PeekCode();
        int count;
        if (c is >= 0x80 and <= 0x8F)
        {
            _pos++;
            count = c & 0x0F;
        }
        else if (c == 0xDE)
        {
            count = BinaryPrimitives.ReadUInt16BigEndian(Take(2, c));
        }
        else if (c == 0xDF)
        {
            count = Length(BinaryPrimitives.ReadUInt32BigEndian(Take(4, c)));
        }
        else
        {
            throw new CtyException($"{what} is required, found {Describe(c)}");
        }
        if (count > (_data.Length - _pos) / 2)
        {
            throw Truncated();
        }
        return count;
    }

    public ReadOnlySpan<byte> ReadExt(out sbyte type)
    {
        var c = PeekCode();
        int length;
        switch (c)
        {
            case >= 0xD4 and <= 0xD8:
                _pos++;
                length = 1 << (c - 0xD4);
                break;
            case 0xC7:
                length = Take(1, c)[0];
                break;
            case 0xC8:
                length = BinaryPrimitives.ReadUInt16BigEndian(Take(2, c));
                break;
            case 0xC9:
                length = Length(BinaryPrimitives.ReadUInt32BigEndian(Take(4, c)));
                break;
            default:
                throw new CtyException($"extension is required, found {Describe(c)}");
        }
        type = (sbyte)Take(1)[0];
        return Take(length);
    }

    /// <summary>Any msgpack integer as a signed 64-bit value.</summary>
    public long ReadInt64(string what)
    {
        var c = PeekCode();
        if (c <= 0x7F)
        {
            _pos++;
            return c;
        }
        if (c >= 0xE0)
        {
            _pos++;
            return (sbyte)c;
        }
        return c switch
        {
            0xCC => Take(1, c)[0],
            0xCD => BinaryPrimitives.ReadUInt16BigEndian(Take(2, c)),
            0xCE => BinaryPrimitives.ReadUInt32BigEndian(Take(4, c)),
            0xCF => BinaryPrimitives.ReadUInt64BigEndian(Take(8, c)) is var u && u <= long.MaxValue
                ? (long)u
                : throw new CtyException($"{what} is out of range"),
            0xD0 => (sbyte)Take(1, c)[0],
            0xD1 => BinaryPrimitives.ReadInt16BigEndian(Take(2, c)),
            0xD2 => BinaryPrimitives.ReadInt32BigEndian(Take(4, c)),
            0xD3 => BinaryPrimitives.ReadInt64BigEndian(Take(8, c)),
            _ => throw new CtyException($"{what} must be an integer, found {Describe(c)}"),
        };
    }

    /// <summary>A cty number: any int/uint width, float32/64, or decimal text in a str.</summary>
    public CtyNumber ReadNumber()
    {
        var c = PeekCode();
        switch (c)
        {
            case <= 0x7F or >= 0xE0 or (>= 0xCC and <= 0xCE) or (>= 0xD0 and <= 0xD3):
                return CtyNumber.FromInt64(ReadInt64("number"));
            case 0xCF:
                return CtyNumber.FromUInt64(BinaryPrimitives.ReadUInt64BigEndian(Take(8, c)));
            case 0xCA:
                return FromFloat(BinaryPrimitives.ReadSingleBigEndian(Take(4, c)));
            case 0xCB:
                return FromFloat(BinaryPrimitives.ReadDoubleBigEndian(Take(8, c)));
            default:
                if (!IsStr(c) && !IsBin(c))
                {
                    throw new CtyException($"number is required, found {Describe(c)}");
                }
                var text = ReadStringBytes("number");
                return CtyNumber.TryParse(text, out var n)
                    ? n
                    : throw new CtyException($"number is required, found string \"{Encoding.UTF8.GetString(text[..Math.Min(text.Length, 40)])}\"");
        }

        static CtyNumber FromFloat(double d) => double.IsNaN(d)
            ? throw new CtyException("number is required, found NaN")
            : CtyNumber.FromDoubleExact(d);
    }

    /// <summary>Skips one complete item without recursion, so hostile nesting cannot overflow the stack.</summary>
    public void Skip()
    {
        long pending = 1;
        while (pending > 0)
        {
            pending--;
            var c = PeekCode();
            if (c <= 0x7F || c >= 0xE0 || c is 0xC0 or 0xC2 or 0xC3)
            {
                _pos++;
            }
            else if (IsStr(c) || IsBin(c))
            {
                ReadStringBytes();
            }
            else if (IsArray(c))
            {
                pending += ReadArrayHeader("array");
            }
            else if (IsMap(c))
            {
                pending += 2L * ReadMapHeader("map");
            }
            else if (IsExt(c))
            {
                ReadExt(out _);
            }
            else
            {
                _ = c switch
                {
                    0xCA => Take(4, c),
                    0xCB => Take(8, c),
                    0xCC or 0xD0 => Take(1, c),
                    0xCD or 0xD1 => Take(2, c),
                    0xCE or 0xD2 => Take(4, c),
                    0xCF or 0xD3 => Take(8, c),
                    _ => throw new CtyException($"invalid msgpack code 0x{c:x2}"),
                };
            }
        }
    }

    // Consumes the code byte already peeked, then n bytes of payload.
    private ReadOnlySpan<byte> Take(int n, byte code)
    {
        Debug.Assert(_data[_pos] == code);
        _pos++;
        return Take(n);
    }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n > _data.Length - _pos)
        {
            throw Truncated();
        }
        var s = _data.Slice(_pos, n);
        _pos += n;
        return s;
    }

    private static int Length(uint n) => n <= int.MaxValue ? (int)n : throw Truncated();

    private static CtyException Truncated() => new("msgpack input is truncated");
}

/// <summary>Minimal msgpack writer into a growable array; always picks the shortest format.</summary>
internal sealed class MsgPackWriter
{
    private byte[] _buffer;
    private int _length;

    public MsgPackWriter(int capacity = 256) => _buffer = new byte[capacity];

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();

    public void WriteNil() => Byte(0xC0);

    public void WriteBool(bool value) => Byte(value ? (byte)0xC3 : (byte)0xC2);

    /// <summary>Non-negative values use the uint codes, as Terraform's encoder (compact ints) does.</summary>
    public void WriteInt(long value)
    {
        if (value >= 0)
        {
            WriteUInt((ulong)value);
        }
        else if (value >= -32)
        {
            Byte((byte)(sbyte)value);
        }
        else if (value >= sbyte.MinValue)
        {
            var s = Span(2);
            s[0] = 0xD0;
            s[1] = (byte)(sbyte)value;
        }
        else if (value >= short.MinValue)
        {
            var s = Span(3);
            s[0] = 0xD1;
            BinaryPrimitives.WriteInt16BigEndian(s[1..], (short)value);
        }
        else if (value >= int.MinValue)
        {
            var s = Span(5);
            s[0] = 0xD2;
            BinaryPrimitives.WriteInt32BigEndian(s[1..], (int)value);
        }
        else
        {
            var s = Span(9);
            s[0] = 0xD3;
            BinaryPrimitives.WriteInt64BigEndian(s[1..], value);
        }
    }

    public void WriteUInt(ulong value)
    {
        if (value <= 0x7F)
        {
            Byte((byte)value);
        }
        else if (value <= byte.MaxValue)
        {
            var s = Span(2);
            s[0] = 0xCC;
            s[1] = (byte)value;
        }
        else if (value <= ushort.MaxValue)
        {
            var s = Span(3);
            s[0] = 0xCD;
            BinaryPrimitives.WriteUInt16BigEndian(s[1..], (ushort)value);
        }
        else if (value <= uint.MaxValue)
        {
            var s = Span(5);
            s[0] = 0xCE;
            BinaryPrimitives.WriteUInt32BigEndian(s[1..], (uint)value);
        }
        else
        {
            var s = Span(9);
            s[0] = 0xCF;
            BinaryPrimitives.WriteUInt64BigEndian(s[1..], value);
        }
    }

    public void WriteDouble(double value)
    {
        var s = Span(9);
        s[0] = 0xCB;
        BinaryPrimitives.WriteDoubleBigEndian(s[1..], value);
    }

    public void WriteString(string value)
    {
        int count;
        try
        {
            count = MsgPackReader.StrictUtf8.GetByteCount(value);
        }
        catch (EncoderFallbackException)
        {
            throw new CtyException("string is not valid UTF-16 (lone surrogate)");
        }
        WriteLengthHeader(count, 0xA0, 31, 0xD9, 0xDA, 0xDB);
        MsgPackReader.StrictUtf8.GetBytes(value, Span(count));
    }

    public void WriteUtf8String(ReadOnlySpan<byte> utf8)
    {
        WriteLengthHeader(utf8.Length, 0xA0, 31, 0xD9, 0xDA, 0xDB);
        utf8.CopyTo(Span(utf8.Length));
    }

    public void WriteBinary(ReadOnlySpan<byte> value)
    {
        WriteLengthHeader(value.Length, 0, -1, 0xC4, 0xC5, 0xC6);
        value.CopyTo(Span(value.Length));
    }

    public void WriteArrayHeader(int count) => WriteLengthHeader(count, 0x90, 15, 0, 0xDC, 0xDD);

    public void WriteMapHeader(int count) => WriteLengthHeader(count, 0x80, 15, 0, 0xDE, 0xDF);

    public void WriteExtHeader(sbyte type, int length)
    {
        switch (length)
        {
            case 1:
                Byte(0xD4);
                break;
            case 2:
                Byte(0xD5);
                break;
            case 4:
                Byte(0xD6);
                break;
            case 8:
                Byte(0xD7);
                break;
            case 16:
                Byte(0xD8);
                break;
            default:
                WriteLengthHeader(length, 0, -1, 0xC7, 0xC8, 0xC9);
                break;
        }
        Byte((byte)type);
    }

    public void WriteRaw(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Span(bytes.Length));

    // fix: inline length up to fixMax; code8 (0 = none), code16, code32 otherwise.
    private void WriteLengthHeader(int length, byte fix, int fixMax, byte code8, byte code16, byte code32)
    {
        if (length <= fixMax)
        {
            Byte((byte)(fix | length));
        }
        else if (code8 != 0 && length <= byte.MaxValue)
        {
            var s = Span(2);
            s[0] = code8;
            s[1] = (byte)length;
        }
        else if (length <= ushort.MaxValue)
        {
            var s = Span(3);
            s[0] = code16;
            BinaryPrimitives.WriteUInt16BigEndian(s[1..], (ushort)length);
        }
        else
        {
            var s = Span(5);
            s[0] = code32;
            BinaryPrimitives.WriteUInt32BigEndian(s[1..], (uint)length);
        }
    }

    private void Byte(byte b) => Span(1)[0] = b;

    private Span<byte> Span(int n)
    {
        if (_buffer.Length - _length < n)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + n));
        }
        var s = _buffer.AsSpan(_length, n);
        _length += n;
        return s;
    }
}
