using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Kvm.Terraform.Cty;

public enum CtyKind : byte
{
    String,
    Number,
    Bool,
    List,
    Set,
    Map,
    Object,
    Tuple,
    /// <summary>cty's DynamicPseudoType: "any type", resolved per value on the wire.</summary>
    Dynamic,
}

/// <summary>
/// An immutable cty type. Object attributes are kept sorted by ordinal name so that lookups can
/// binary-search and encoders can emit keys in the same order go-cty does.
/// </summary>
public sealed class CtyType : IEquatable<CtyType>
{
    public static readonly CtyType String = new(CtyKind.String);
    public static readonly CtyType Number = new(CtyKind.Number);
    public static readonly CtyType Bool = new(CtyKind.Bool);
    public static readonly CtyType Dynamic = new(CtyKind.Dynamic);
    public static readonly CtyType EmptyObject = new(CtyKind.Object) { _names = [], _types = [], _optional = [] };
    public static readonly CtyType EmptyTuple = new(CtyKind.Tuple) { _types = [] };

    private static readonly string[] NoNames = [];

    private CtyType? _element;
    private string[]? _names;
    private CtyType[]? _types;
    private string[]? _optional;
    private int _hash;
    private byte[]? _json;
    private byte[][]? _utf8Names;

    private CtyType(CtyKind kind) => Kind = kind;

    public CtyKind Kind { get; }

    public bool IsPrimitive => Kind <= CtyKind.Bool;

    public bool IsCollection => Kind is CtyKind.List or CtyKind.Set or CtyKind.Map;

    /// <summary>Element type of a list, set or map.</summary>
    public CtyType ElementType => _element ?? throw new InvalidOperationException($"{this} has no element type");

    /// <summary>Attribute names of an object type, ordinal-sorted.</summary>
    public IReadOnlyList<string> AttributeNames => Kind == CtyKind.Object ? _names! : throw new InvalidOperationException($"{this} is not an object type");

    /// <summary>Attribute types of an object type, parallel to <see cref="AttributeNames"/>.</summary>
    public IReadOnlyList<CtyType> AttributeTypes => Kind == CtyKind.Object ? _types! : throw new InvalidOperationException($"{this} is not an object type");

    /// <summary>Names of optional attributes (type constraints only), ordinal-sorted.</summary>
    public IReadOnlyList<string> OptionalAttributes => Kind == CtyKind.Object ? _optional! : NoNames;

    public IReadOnlyList<CtyType> TupleElementTypes => Kind == CtyKind.Tuple ? _types! : throw new InvalidOperationException($"{this} is not a tuple type");

    internal string[] Names => _names!;

    // Codecs compare attribute keys as UTF-8 so decoding an object allocates no key strings.
    internal byte[][] Utf8Names => _utf8Names ??= Array.ConvertAll(_names!, static n => Encoding.UTF8.GetBytes(n));
    internal CtyType[] Types => _types!;

    public static CtyType List(CtyType element) => new(CtyKind.List) { _element = element ?? throw new ArgumentNullException(nameof(element)) };

    public static CtyType Set(CtyType element) => new(CtyKind.Set) { _element = element ?? throw new ArgumentNullException(nameof(element)) };

    public static CtyType Map(CtyType element) => new(CtyKind.Map) { _element = element ?? throw new ArgumentNullException(nameof(element)) };

    public static CtyType Tuple(params IEnumerable<CtyType> elements)
    {
        var types = elements.ToArray();
        if (types.Length == 0)
        {
            return EmptyTuple;
        }
        foreach (var t in types)
        {
            ArgumentNullException.ThrowIfNull(t, nameof(elements));
        }
        return new(CtyKind.Tuple) { _types = types };
    }

    public static CtyType Object(params (string Name, CtyType Type)[] attributes) =>
        Object(attributes.Select(static a => new KeyValuePair<string, CtyType>(a.Name, a.Type)));

    public static CtyType Object(IEnumerable<KeyValuePair<string, CtyType>> attributes, IEnumerable<string>? optionalAttributes = null)
    {
        var pairs = attributes.ToArray();
        Array.Sort(pairs, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var names = new string[pairs.Length];
        var types = new CtyType[pairs.Length];
        for (var i = 0; i < pairs.Length; i++)
        {
            names[i] = pairs[i].Key ?? throw new ArgumentException("attribute name is null", nameof(attributes));
            types[i] = pairs[i].Value ?? throw new ArgumentException($"attribute {names[i]} has no type", nameof(attributes));
            if (i > 0 && names[i] == names[i - 1])
            {
                throw new ArgumentException($"duplicate attribute {names[i]}", nameof(attributes));
            }
        }
        var optional = optionalAttributes?.Distinct(StringComparer.Ordinal).ToArray() ?? NoNames;
        Array.Sort(optional, StringComparer.Ordinal);
        foreach (var o in optional)
        {
            if (Array.BinarySearch(names, o, StringComparer.Ordinal) < 0)
            {
                throw new ArgumentException($"optional attribute {o} is not an attribute", nameof(optionalAttributes));
            }
        }
        if (names.Length == 0)
        {
            return EmptyObject;
        }
        return new(CtyKind.Object) { _names = names, _types = types, _optional = optional };
    }

    /// <summary>Index of an attribute in <see cref="AttributeNames"/>, or -1.</summary>
    public int IndexOfAttribute(string name)
    {
        if (Kind != CtyKind.Object)
        {
            throw new InvalidOperationException($"{this} is not an object type");
        }
        var i = Array.BinarySearch(_names!, name, StringComparer.Ordinal);
        return i < 0 ? -1 : i;
    }

    public bool HasAttribute(string name) => IndexOfAttribute(name) >= 0;

    public CtyType AttributeType(string name)
    {
        var i = IndexOfAttribute(name);
        return i >= 0 ? _types![i] : throw new KeyNotFoundException($"{this} has no attribute \"{name}\"");
    }

    public bool IsOptional(string name) => Kind == CtyKind.Object && Array.BinarySearch(_optional!, name, StringComparer.Ordinal) >= 0;

    /// <summary>True when a value of <paramref name="actual"/> type may stand where this type is expected:
    /// equal types, or this type has <c>dynamic</c> where <paramref name="actual"/> is concrete.</summary>
    public bool Accepts(CtyType actual)
    {
        if (ReferenceEquals(this, actual) || Kind == CtyKind.Dynamic)
        {
            return true;
        }
        if (Kind != actual.Kind)
        {
            return false;
        }
        switch (Kind)
        {
            case CtyKind.List or CtyKind.Set or CtyKind.Map:
                return _element!.Accepts(actual._element!);
            case CtyKind.Object:
                if (!SameNames(_names!, actual._names!))
                {
                    return false;
                }
                goto case CtyKind.Tuple;
            case CtyKind.Tuple:
                if (_types!.Length != actual._types!.Length)
                {
                    return false;
                }
                for (var i = 0; i < _types.Length; i++)
                {
                    if (!_types[i].Accepts(actual._types[i]))
                    {
                        return false;
                    }
                }
                return true;
            default:
                return true;
        }
    }

    internal static bool SameNames(string[] a, string[] b)
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }
        if (a.Length != b.Length)
        {
            return false;
        }
        for (var i = 0; i < a.Length; i++)
        {
            if (!string.Equals(a[i], b[i], StringComparison.Ordinal))
            {
                return false;
            }
        }
        return true;
    }

    public bool Equals(CtyType? other)
    {
        if (ReferenceEquals(this, other))
        {
            return true;
        }
        if (other is null || Kind != other.Kind || GetHashCode() != other.GetHashCode())
        {
            return false;
        }
        switch (Kind)
        {
            case CtyKind.List or CtyKind.Set or CtyKind.Map:
                return _element!.Equals(other._element);
            case CtyKind.Object:
                if (!SameNames(_names!, other._names!) || !SameNames(_optional!, other._optional!))
                {
                    return false;
                }
                goto case CtyKind.Tuple;
            case CtyKind.Tuple:
                if (_types!.Length != other._types!.Length)
                {
                    return false;
                }
                for (var i = 0; i < _types.Length; i++)
                {
                    if (!_types[i].Equals(other._types[i]))
                    {
                        return false;
                    }
                }
                return true;
            default:
                return true;
        }
    }

    public override bool Equals(object? obj) => Equals(obj as CtyType);

    public override int GetHashCode()
    {
        if (_hash != 0)
        {
            return _hash;
        }
        var h = new HashCode();
        h.Add(Kind);
        if (_element is not null)
        {
            h.Add(_element.GetHashCode());
        }
        if (_names is not null)
        {
            foreach (var n in _names)
            {
                h.Add(n, StringComparer.Ordinal);
            }
            foreach (var n in _optional!)
            {
                h.Add(n, StringComparer.Ordinal);
            }
        }
        if (_types is not null)
        {
            foreach (var t in _types)
            {
                h.Add(t.GetHashCode());
            }
        }
        var r = h.ToHashCode();
        _hash = r == 0 ? 1 : r;
        return _hash;
    }

    public static bool operator ==(CtyType? a, CtyType? b) => a is null ? b is null : a.Equals(b);

    public static bool operator !=(CtyType? a, CtyType? b) => !(a == b);

    /// <summary>The type's JSON text, e.g. <c>["list","string"]</c>.</summary>
    public override string ToString() => Encoding.UTF8.GetString(ToJsonBytes());

    /// <summary>
    /// Terraform's type JSON as UTF-8, e.g. for <c>Schema.Attribute.type</c>. The array is cached
    /// and shared: callers must not modify it.
    /// </summary>
    public byte[] ToJsonBytes()
    {
        if (_json is null)
        {
            var buffer = new ArrayBufferWriter<byte>(32);
            using (var writer = new Utf8JsonWriter(buffer))
            {
                WriteJson(writer);
            }
            _json = buffer.WrittenSpan.ToArray();
        }
        return _json;
    }

    public void WriteJson(Utf8JsonWriter writer)
    {
        switch (Kind)
        {
            case CtyKind.String:
                writer.WriteStringValue("string"u8);
                break;
            case CtyKind.Number:
                writer.WriteStringValue("number"u8);
                break;
            case CtyKind.Bool:
                writer.WriteStringValue("bool"u8);
                break;
            case CtyKind.Dynamic:
                writer.WriteStringValue("dynamic"u8);
                break;
            case CtyKind.List or CtyKind.Set or CtyKind.Map:
                writer.WriteStartArray();
                writer.WriteStringValue(Kind switch { CtyKind.List => "list"u8, CtyKind.Set => "set"u8, _ => "map"u8 });
                _element!.WriteJson(writer);
                writer.WriteEndArray();
                break;
            case CtyKind.Object:
                writer.WriteStartArray();
                writer.WriteStringValue("object"u8);
                writer.WriteStartObject();
                for (var i = 0; i < _names!.Length; i++)
                {
                    writer.WritePropertyName(_names[i]);
                    _types![i].WriteJson(writer);
                }
                writer.WriteEndObject();
                if (_optional!.Length > 0)
                {
                    writer.WriteStartArray();
                    foreach (var o in _optional)
                    {
                        writer.WriteStringValue(o);
                    }
                    writer.WriteEndArray();
                }
                writer.WriteEndArray();
                break;
            case CtyKind.Tuple:
                writer.WriteStartArray();
                writer.WriteStringValue("tuple"u8);
                writer.WriteStartArray();
                foreach (var t in _types!)
                {
                    t.WriteJson(writer);
                }
                writer.WriteEndArray();
                writer.WriteEndArray();
                break;
        }
    }

    public static CtyType ParseJson(string json) => ParseJson(Encoding.UTF8.GetBytes(json));

    /// <summary>Parses Terraform's type JSON; throws <see cref="CtyException"/> when it is not one.</summary>
    public static CtyType ParseJson(ReadOnlySpan<byte> utf8)
    {
        var reader = new Utf8JsonReader(utf8);
        try
        {
            Next(ref reader);
            var type = ReadJson(ref reader);
            if (reader.Read())
            {
                throw new CtyException("type JSON: extra data after the type");
            }
            return type;
        }
        catch (JsonException e)
        {
            throw new CtyException($"type JSON: {e.Message}", e);
        }
    }

    /// <summary>Reads a type whose first token the reader is positioned on; leaves the reader on its last token.</summary>
    public static CtyType ReadJson(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            if (reader.ValueTextEquals("string"u8))
            {
                return String;
            }
            if (reader.ValueTextEquals("number"u8))
            {
                return Number;
            }
            if (reader.ValueTextEquals("bool"u8))
            {
                return Bool;
            }
            if (reader.ValueTextEquals("dynamic"u8))
            {
                return Dynamic;
            }
            throw new CtyException($"type JSON: invalid primitive type name \"{reader.GetString()}\"");
        }
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new CtyException($"type JSON: expected a type name or array, found {reader.TokenType}");
        }
        Next(ref reader);
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new CtyException("type JSON: invalid complex type kind name");
        }
        CtyType result;
        if (reader.ValueTextEquals("list"u8) || reader.ValueTextEquals("set"u8) || reader.ValueTextEquals("map"u8))
        {
            var kind = reader.ValueTextEquals("list"u8) ? CtyKind.List : reader.ValueTextEquals("set"u8) ? CtyKind.Set : CtyKind.Map;
            Next(ref reader);
            var element = ReadJson(ref reader);
            result = new CtyType(kind) { _element = element };
        }
        else if (reader.ValueTextEquals("object"u8))
        {
            Next(ref reader);
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new CtyException("type JSON: object attributes must be a JSON object");
            }
            var attributes = new List<KeyValuePair<string, CtyType>>();
            while (true)
            {
                Next(ref reader);
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    break;
                }
                var name = reader.GetString()!;
                Next(ref reader);
                attributes.Add(new(name, ReadJson(ref reader)));
            }
            List<string>? optional = null;
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.StartArray)
            {
                optional = [];
                while (true)
                {
                    Next(ref reader);
                    if (reader.TokenType == JsonTokenType.EndArray)
                    {
                        break;
                    }
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        throw new CtyException("type JSON: optional attribute names must be strings");
                    }
                    optional.Add(reader.GetString()!);
                }
                Next(ref reader);
            }
            try
            {
                result = Object(attributes, optional);
            }
            catch (ArgumentException e)
            {
                throw new CtyException($"type JSON: {e.Message}", e);
            }
            return ExpectEnd(ref reader, result, alreadyAdvanced: true);
        }
        else if (reader.ValueTextEquals("tuple"u8))
        {
            Next(ref reader);
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                throw new CtyException("type JSON: tuple element types must be a JSON array");
            }
            var elements = new List<CtyType>();
            while (true)
            {
                Next(ref reader);
                if (reader.TokenType == JsonTokenType.EndArray)
                {
                    break;
                }
                elements.Add(ReadJson(ref reader));
            }
            result = Tuple(elements);
        }
        else
        {
            throw new CtyException($"type JSON: invalid complex type kind name \"{reader.GetString()}\"");
        }
        return ExpectEnd(ref reader, result, alreadyAdvanced: false);
    }

    private static CtyType ExpectEnd(ref Utf8JsonReader reader, CtyType result, bool alreadyAdvanced)
    {
        if (!alreadyAdvanced)
        {
            Next(ref reader);
        }
        if (reader.TokenType != JsonTokenType.EndArray)
        {
            throw new CtyException("type JSON: unexpected extra data in type description");
        }
        return result;
    }

    private static void Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new CtyException("type JSON: unexpected end of input");
        }
    }
}
