using System.Numerics;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Kvm.Terraform.Cty;

/// <summary>
/// An immutable cty value: null or unknown of a type, or known. A value's <see cref="Type"/> is the
/// type it was built or decoded with; where that type says <c>dynamic</c> the value carries its
/// concrete type. Objects always hold every attribute of their type (null when unset).
/// <see cref="Equals(CtyValue?)"/> is structural ("raw") equality: unknown equals unknown of the
/// same type and refinements, sets ignore order.
/// </summary>
public sealed class CtyValue : IEquatable<CtyValue>
{
    private const byte KnownState = 0;
    private const byte NullState = 1;
    private const byte UnknownState = 2;

    private static readonly object BoxedTrue = true;
    private static readonly object BoxedFalse = false;

    public static readonly CtyValue True = new(CtyType.Bool, KnownState, BoxedTrue);
    public static readonly CtyValue False = new(CtyType.Bool, KnownState, BoxedFalse);
    public static readonly CtyValue EmptyString = new(CtyType.String, KnownState, "");
    public static readonly CtyValue EmptyObject = new(CtyType.EmptyObject, KnownState, Array.Empty<CtyValue>());
    public static readonly CtyValue EmptyTuple = new(CtyType.EmptyTuple, KnownState, Array.Empty<CtyValue>());

    /// <summary>cty.DynamicVal: unknown of unknown type.</summary>
    public static readonly CtyValue DynamicUnknown = new(CtyType.Dynamic, UnknownState, null);

    /// <summary>Null of dynamic type.</summary>
    public static readonly CtyValue DynamicNull = new(CtyType.Dynamic, NullState, null);

    private readonly byte _state;

    // string | CtyNumber | boxed bool | CtyValue[] (list, set, tuple, object in attribute order) | MapData
    // | CtyRefinements (unknown with refinements)
    private readonly object? _payload;
    private int _hash;

    private CtyValue(CtyType type, byte state, object? payload)
    {
        Type = type;
        _state = state;
        _payload = payload;
    }

    private sealed class MapData(string[] keys, CtyValue[] values)
    {
        public readonly string[] Keys = keys;
        public readonly CtyValue[] Values = values;
    }

    public CtyType Type { get; }

    public bool IsNull => _state == NullState;

    public bool IsKnown => _state != UnknownState;

    /// <summary>Known, non-null, and (for collections and structures) so is everything inside.</summary>
    public bool IsWhollyKnown
    {
        get
        {
            if (_state == UnknownState)
            {
                return false;
            }
            switch (_payload)
            {
                case CtyValue[] items:
                    foreach (var v in items)
                    {
                        if (!v.IsWhollyKnown)
                        {
                            return false;
                        }
                    }
                    return true;
                case MapData map:
                    foreach (var v in map.Values)
                    {
                        if (!v.IsWhollyKnown)
                        {
                            return false;
                        }
                    }
                    return true;
                default:
                    return true;
            }
        }
    }

    /// <summary>Refinements of an unknown value; <see cref="CtyRefinements.None"/> otherwise.</summary>
    public CtyRefinements Refinements => _payload as CtyRefinements ?? CtyRefinements.None;

    // ---- construction ----

    public static CtyValue Null(CtyType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return type.Kind == CtyKind.Dynamic ? DynamicNull : new(type, NullState, null);
    }

    public static CtyValue Unknown(CtyType type, CtyRefinements? refinements = null)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (refinements is null || refinements.IsEmpty)
        {
            return type.Kind == CtyKind.Dynamic ? DynamicUnknown : new(type, UnknownState, null);
        }
        CheckRefinements(type, refinements);
        return new(type, UnknownState, refinements);
    }

    internal static void CheckRefinements(CtyType type, CtyRefinements r)
    {
        if (type.Kind == CtyKind.Dynamic)
        {
            throw new CtyException("an unknown of dynamic type cannot be refined");
        }
        if (r.StringPrefix is not null && type.Kind != CtyKind.String)
        {
            throw new CtyException($"string prefix refinement on {type}");
        }
        if ((r.NumberLowerBound is not null || r.NumberUpperBound is not null) && type.Kind != CtyKind.Number)
        {
            throw new CtyException($"number bound refinement on {type}");
        }
        if ((r.LengthLowerBound is not null || r.LengthUpperBound is not null) && !type.IsCollection)
        {
            throw new CtyException($"length bound refinement on {type}");
        }
    }

    public static CtyValue String(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Length == 0 ? EmptyString : new(CtyType.String, KnownState, value);
    }

    public static CtyValue Number(CtyNumber value) => new(CtyType.Number, KnownState, value ?? throw new ArgumentNullException(nameof(value)));

    public static CtyValue Number(long value) => Number(CtyNumber.FromInt64(value));

    public static CtyValue Number(BigInteger value) => Number(CtyNumber.FromBigInteger(value));

    public static CtyValue Number(decimal value) => Number(CtyNumber.FromDecimal(value));

    /// <summary>From a double's shortest round-trip decimal; see <see cref="CtyNumber.FromDouble"/>.</summary>
    public static CtyValue Number(double value) => Number(CtyNumber.FromDouble(value));

    public static CtyValue Bool(bool value) => value ? True : False;

    public static CtyValue List(CtyType elementType, params IEnumerable<CtyValue> elements) =>
        new(CtyType.List(elementType), KnownState, CheckElements(elementType, elements));

    /// <summary>A set; duplicate elements collapse.</summary>
    public static CtyValue Set(CtyType elementType, params IEnumerable<CtyValue> elements) =>
        new(CtyType.Set(elementType), KnownState, Distinct(CheckElements(elementType, elements)));

    public static CtyValue Map(CtyType elementType, params (string Key, CtyValue Value)[] entries) =>
        Map(elementType, entries.Select(static e => new KeyValuePair<string, CtyValue>(e.Key, e.Value)));

    public static CtyValue Map(CtyType elementType, IEnumerable<KeyValuePair<string, CtyValue>> entries)
    {
        var pairs = entries.ToArray();
        Array.Sort(pairs, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var keys = new string[pairs.Length];
        var values = new CtyValue[pairs.Length];
        for (var i = 0; i < pairs.Length; i++)
        {
            keys[i] = pairs[i].Key ?? throw new ArgumentException("map key is null", nameof(entries));
            if (i > 0 && keys[i] == keys[i - 1])
            {
                throw new ArgumentException($"duplicate map key \"{keys[i]}\"", nameof(entries));
            }
            values[i] = CheckElement(elementType, pairs[i].Value);
        }
        return new(CtyType.Map(elementType), KnownState, new MapData(keys, values));
    }

    /// <summary>An object of <paramref name="type"/>; attributes not given are null.</summary>
    public static CtyValue Object(CtyType type, params (string Name, CtyValue Value)[] attributes) =>
        Object(type, attributes.Select(static a => new KeyValuePair<string, CtyValue>(a.Name, a.Value)));

    /// <summary>An object of <paramref name="type"/>; attributes not given are null.</summary>
    public static CtyValue Object(CtyType type, IEnumerable<KeyValuePair<string, CtyValue>> attributes)
    {
        if (type.Kind != CtyKind.Object)
        {
            throw new ArgumentException($"{type} is not an object type", nameof(type));
        }
        var values = new CtyValue[type.Names.Length];
        foreach (var (name, value) in attributes)
        {
            var i = type.IndexOfAttribute(name);
            if (i < 0)
            {
                throw new ArgumentException($"{type} has no attribute \"{name}\"", nameof(attributes));
            }
            if (values[i] is not null)
            {
                throw new ArgumentException($"attribute \"{name}\" given twice", nameof(attributes));
            }
            values[i] = CheckElement(type.Types[i], value);
        }
        for (var i = 0; i < values.Length; i++)
        {
            values[i] ??= Null(type.Types[i]);
        }
        return new(type, KnownState, values);
    }

    /// <summary>An object whose type is inferred from its attribute values.</summary>
    public static CtyValue Object(params (string Name, CtyValue Value)[] attributes)
    {
        var type = CtyType.Object(attributes.Select(static a => new KeyValuePair<string, CtyType>(a.Name, a.Value.Type)));
        return Object(type, attributes);
    }

    public static CtyValue Tuple(params IEnumerable<CtyValue> elements)
    {
        var items = elements.ToArray();
        if (items.Length == 0)
        {
            return EmptyTuple;
        }
        var types = new CtyType[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            types[i] = (items[i] ?? throw new ArgumentException("tuple element is null", nameof(elements))).Type;
        }
        return new(CtyType.Tuple(types), KnownState, items);
    }

    private static CtyValue[] CheckElements(CtyType elementType, IEnumerable<CtyValue> elements)
    {
        ArgumentNullException.ThrowIfNull(elementType);
        var items = elements.ToArray();
        foreach (var item in items)
        {
            CheckElement(elementType, item);
        }
        return items;
    }

    private static CtyValue CheckElement(CtyType expected, CtyValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!expected.Accepts(value.Type) && !(value.Type.Kind == CtyKind.Dynamic && value._state != KnownState))
        {
            throw new ArgumentException($"a value of type {value.Type} cannot stand where {expected} is required");
        }
        return value;
    }

    // Codec constructors: the caller already checked the shape against the type.
    internal static CtyValue CreateKnown(CtyType type, CtyValue[] items) =>
        type.Kind == CtyKind.Set ? new(type, KnownState, Distinct(items)) : new(type, KnownState, items);

    internal static CtyValue CreateMap(CtyType type, string[] keys, CtyValue[] values)
    {
        if (keys.Length > 1)
        {
            Array.Sort(keys, values, StringComparer.Ordinal);
            for (var i = 1; i < keys.Length; i++)
            {
                if (keys[i] == keys[i - 1])
                {
                    throw new CtyException($"duplicate map key \"{keys[i]}\"");
                }
            }
        }
        return new(type, KnownState, new MapData(keys, values));
    }

    private static CtyValue[] Distinct(CtyValue[] items)
    {
        if (items.Length < 2)
        {
            return items;
        }
        if (items.Length <= 8)
        {
            List<CtyValue>? kept = null;
            for (var i = 0; i < items.Length; i++)
            {
                var duplicate = false;
                for (var j = 0; j < i && !duplicate; j++)
                {
                    duplicate = items[i].Equals(items[j]);
                }
                if (duplicate)
                {
                    kept ??= [.. items.AsSpan(0, i)];
                }
                else
                {
                    kept?.Add(items[i]);
                }
            }
            return kept is null ? items : [.. kept];
        }
        var seen = new HashSet<CtyValue>(items.Length);
        var result = new List<CtyValue>(items.Length);
        foreach (var item in items)
        {
            if (seen.Add(item))
            {
                result.Add(item);
            }
        }
        return result.Count == items.Length ? items : [.. result];
    }

    // ---- access ----

    public string AsString() => RequireKnown(CtyKind.String) as string ?? throw Wrong("string");

    public CtyNumber AsNumber() => RequireKnown(CtyKind.Number) as CtyNumber ?? throw Wrong("number");

    public bool AsBool() => RequireKnown(CtyKind.Bool) is bool b ? b : throw Wrong("bool");

    public long AsInt64() => AsNumber().AsInt64();

    public double AsDouble() => AsNumber().AsDouble();

    public decimal AsDecimal() => AsNumber().AsDecimal();

    /// <summary>Elements of a known list, set (in no particular order) or tuple.</summary>
    public IReadOnlyList<CtyValue> Elements => Type.Kind is CtyKind.List or CtyKind.Set or CtyKind.Tuple
        ? Items
        : throw new InvalidOperationException($"a value of type {Type} has no elements");

    /// <summary>Number of elements, map entries or object attributes of a known value.</summary>
    public int Count => RequireKnownAny() switch
    {
        CtyValue[] items => items.Length,
        MapData map => map.Keys.Length,
        _ => throw new InvalidOperationException($"a value of type {Type} has no length"),
    };

    /// <summary>Entries of a known map (ordinal key order) or the attributes of a known object.</summary>
    public IEnumerable<KeyValuePair<string, CtyValue>> Entries
    {
        get
        {
            switch (RequireKnownAny())
            {
                case MapData map:
                    return Pairs(map.Keys, map.Values);
                case CtyValue[] items when Type.Kind == CtyKind.Object:
                    return Pairs(Type.Names, items);
                default:
                    throw new InvalidOperationException($"a value of type {Type} has no entries");
            }

            static IEnumerable<KeyValuePair<string, CtyValue>> Pairs(string[] keys, CtyValue[] values)
            {
                for (var i = 0; i < keys.Length; i++)
                {
                    yield return new(keys[i], values[i]);
                }
            }
        }
    }

    internal CtyValue[] Items => RequireKnownAny() as CtyValue[] ?? throw new InvalidOperationException($"a value of type {Type} has no elements");

    internal string[] MapKeys => ((MapData)_payload!).Keys;

    internal CtyValue[] MapValues => ((MapData)_payload!).Values;

    internal object? Payload => _payload;

    /// <summary>
    /// An object attribute. Walking through null or unknown is allowed, so plan code can read
    /// <c>config.GetAttr("disks").Index("scsi0").GetAttr("size")</c> without checks: the attribute of
    /// a null object is null, of an unknown object unknown.
    /// </summary>
    public CtyValue GetAttr(string name)
    {
        if (Type.Kind != CtyKind.Object)
        {
            throw new InvalidOperationException($"a value of type {Type} has no attributes");
        }
        var i = Type.IndexOfAttribute(name);
        if (i < 0)
        {
            throw new KeyNotFoundException($"{Type} has no attribute \"{name}\"");
        }
        return _state switch
        {
            NullState => Null(Type.Types[i]),
            UnknownState => Unknown(Type.Types[i]),
            _ => ((CtyValue[])_payload!)[i],
        };
    }

    /// <summary>A list or tuple element; null/unknown propagate as in <see cref="GetAttr"/>.</summary>
    public CtyValue Index(int index)
    {
        if (Type.Kind is not (CtyKind.List or CtyKind.Tuple))
        {
            throw new InvalidOperationException($"a value of type {Type} cannot be indexed by number");
        }
        if (_state != KnownState)
        {
            var t = Type.Kind == CtyKind.List ? Type.ElementType : Type.Types[index];
            return _state == NullState ? Null(t) : Unknown(t);
        }
        var items = (CtyValue[])_payload!;
        return (uint)index < (uint)items.Length ? items[index] : throw new ArgumentOutOfRangeException(nameof(index), $"index {index} is out of range (length {items.Length})");
    }

    /// <summary>A map element; a missing key gives null of the element type.</summary>
    public CtyValue Index(string key)
    {
        if (Type.Kind != CtyKind.Map)
        {
            throw new InvalidOperationException($"a value of type {Type} cannot be indexed by string");
        }
        if (_state == UnknownState)
        {
            return Unknown(Type.ElementType);
        }
        return TryGetValue(key, out var v) ? v : Null(Type.ElementType);
    }

    public bool TryGetValue(string key, out CtyValue value)
    {
        value = null!;
        if (_payload is not MapData map)
        {
            return false;
        }
        var i = Array.BinarySearch(map.Keys, key, StringComparer.Ordinal);
        if (i < 0)
        {
            return false;
        }
        value = map.Values[i];
        return true;
    }

    /// <summary>Follows a path (attribute names, map keys, list/tuple indexes).</summary>
    public CtyValue Walk(CtyPath path)
    {
        var v = this;
        foreach (var step in path.Steps())
        {
            v = step.Kind switch
            {
                CtyPathStepKind.Attribute => v.GetAttr(step.Name!),
                CtyPathStepKind.StringKey => v.Index(step.Name!),
                _ => v.Index(checked((int)step.Index)),
            };
        }
        return v;
    }

    /// <summary>A copy of this known object with one attribute replaced.</summary>
    public CtyValue WithAttr(string name, CtyValue value)
    {
        if (Type.Kind != CtyKind.Object || _state != KnownState)
        {
            throw new InvalidOperationException($"WithAttr needs a known object, not {this}");
        }
        var i = Type.IndexOfAttribute(name);
        if (i < 0)
        {
            throw new KeyNotFoundException($"{Type} has no attribute \"{name}\"");
        }
        var items = (CtyValue[])((CtyValue[])_payload!).Clone();
        items[i] = CheckElement(Type.Types[i], value);
        return new(Type, KnownState, items);
    }

    private object RequireKnown(CtyKind kind)
    {
        if (Type.Kind != kind)
        {
            throw Wrong(kind.ToString().ToLowerInvariant());
        }
        return RequireKnownAny()!;
    }

    private object? RequireKnownAny() => _state switch
    {
        NullState => throw new InvalidOperationException($"value of type {Type} is null"),
        UnknownState => throw new InvalidOperationException($"value of type {Type} is unknown"),
        _ => _payload,
    };

    private InvalidOperationException Wrong(string wanted) => new($"value of type {Type} is not a {wanted}");

    // ---- equality ----

    public bool Equals(CtyValue? other)
    {
        if (ReferenceEquals(this, other))
        {
            return true;
        }
        if (other is null || _state != other._state || GetHashCode() != other.GetHashCode() || !Type.Equals(other.Type))
        {
            return false;
        }
        switch (_payload)
        {
            case null:
                return other._payload is null;
            case string s:
                return string.Equals(s, other._payload as string, StringComparison.Ordinal);
            case CtyNumber n:
                return n.Equals(other._payload as CtyNumber);
            case bool b:
                return other._payload is bool ob && b == ob;
            case CtyRefinements r:
                return r.Equals(other._payload as CtyRefinements);
            case CtyValue[] items when Type.Kind == CtyKind.Set:
                return SetEquals(items, (CtyValue[])other._payload!);
            case CtyValue[] items:
                return SequenceEquals(items, (CtyValue[])other._payload!);
            case MapData map:
                var om = (MapData)other._payload!;
                return CtyType.SameNames(map.Keys, om.Keys) && SequenceEquals(map.Values, om.Values);
            default:
                return false;
        }
    }

    private static bool SequenceEquals(CtyValue[] a, CtyValue[] b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }
        for (var i = 0; i < a.Length; i++)
        {
            if (!a[i].Equals(b[i]))
            {
                return false;
            }
        }
        return true;
    }

    private static bool SetEquals(CtyValue[] a, CtyValue[] b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }
        if (a.Length > 8)
        {
            return new HashSet<CtyValue>(a).SetEquals(b);
        }
        // Elements are distinct, so same length plus "every b is in a" is enough.
        foreach (var x in b)
        {
            if (Array.IndexOf(a, x) < 0)
            {
                return false;
            }
        }
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as CtyValue);

    public override int GetHashCode()
    {
        if (_hash != 0)
        {
            return _hash;
        }
        int h;
        switch (_payload)
        {
            case null:
                h = HashCode.Combine(_state, Type);
                break;
            case string s:
                h = s.GetHashCode(StringComparison.Ordinal);
                break;
            case CtyValue[] items when Type.Kind == CtyKind.Set:
                // Order-independent on purpose.
                h = items.Length;
                foreach (var item in items)
                {
                    h += item.GetHashCode() * 31;
                }
                break;
            case CtyValue[] items:
                var hc = new HashCode();
                foreach (var item in items)
                {
                    hc.Add(item.GetHashCode());
                }
                h = hc.ToHashCode();
                break;
            case MapData map:
                var hm = new HashCode();
                for (var i = 0; i < map.Keys.Length; i++)
                {
                    hm.Add(map.Keys[i], StringComparer.Ordinal);
                    hm.Add(map.Values[i].GetHashCode());
                }
                h = hm.ToHashCode();
                break;
            default:
                h = HashCode.Combine(_state, _payload);
                break;
        }
        _hash = h == 0 ? 1 : h;
        return _hash;
    }

    public static bool operator ==(CtyValue? a, CtyValue? b) => a is null ? b is null : a.Equals(b);

    public static bool operator !=(CtyValue? a, CtyValue? b) => !(a == b);

    /// <summary>Debug rendering, HCL-like: <c>{ a = "x", b = (known after apply) }</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        Render(sb);
        return sb.ToString();
    }

    private void Render(StringBuilder sb)
    {
        if (_state == NullState)
        {
            sb.Append("null");
            return;
        }
        if (_state == UnknownState)
        {
            sb.Append("(known after apply");
            if (_payload is CtyRefinements r)
            {
                sb.Append(", ").Append(r);
            }
            sb.Append(')');
            return;
        }
        switch (_payload)
        {
            case string s:
                sb.Append('"').Append(JsonEncodedText.Encode(s, JavaScriptEncoder.UnsafeRelaxedJsonEscaping)).Append('"');
                break;
            case CtyNumber n:
                sb.Append(n);
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case CtyValue[] items when Type.Kind == CtyKind.Object:
                RenderPairs(sb, Type.Names, items);
                break;
            case CtyValue[] items:
                sb.Append('[');
                for (var i = 0; i < items.Length; i++)
                {
                    sb.Append(i == 0 ? "" : ", ");
                    items[i].Render(sb);
                }
                sb.Append(']');
                break;
            case MapData map:
                RenderPairs(sb, map.Keys, map.Values);
                break;
        }

        static void RenderPairs(StringBuilder sb, string[] keys, CtyValue[] values)
        {
            sb.Append('{');
            for (var i = 0; i < keys.Length; i++)
            {
                sb.Append(i == 0 ? " " : ", ").Append(keys[i]).Append(" = ");
                values[i].Render(sb);
            }
            sb.Append(keys.Length == 0 ? "}" : " }");
        }
    }
}
