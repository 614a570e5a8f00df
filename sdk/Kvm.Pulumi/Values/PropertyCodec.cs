using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Kvm.Model.Schema;
using Kvm.Pulumi.Schema;

namespace Kvm.Pulumi.Values;

/// <summary>A value the codec could not map onto the schema, at a model path.</summary>
internal sealed record PropertyProblem(AttrPath Path, string Message);

/// <summary>
/// Properties decoded from a Struct into model JSON (snake_case names, map keys untouched).
/// Unknowns stay in <see cref="Value"/> as the unknown sentinel string so they can be sent back
/// as they came; <see cref="Known"/> is the copy without them for validation and diffs.
/// </summary>
internal sealed class DecodedProperties
{
    public required JsonObject Value { get; init; }

    /// <summary>Paths the engine sent as secrets.</summary>
    public HashSet<AttrPath> Secrets { get; } = [];

    /// <summary>Paths whose value is unknown (preview).</summary>
    public HashSet<AttrPath> Unknowns { get; } = [];

    public List<PropertyProblem> Problems { get; } = [];

    public bool HasUnknowns => Unknowns.Count > 0;

    /// <summary>A deep copy of <see cref="Value"/> with every unknown value removed.</summary>
    public JsonObject Known()
    {
        var copy = (JsonObject)Value.DeepClone();
        foreach (var path in Unknowns.OrderByDescending(p => p.Steps.Count))
            JsonPaths.Remove(copy, path);
        return copy;
    }

    /// <summary>True when <paramref name="path"/> is unknown or lies inside an unknown value.</summary>
    public bool IsUnknownAt(AttrPath path) => Unknowns.Any(u => JsonPaths.StartsWith(path, u));
}

/// <summary>How strict decoding is.</summary>
internal enum DecodeMode
{
    /// <summary>User inputs: outputs-only properties and unknown names are problems.</summary>
    Inputs,
    /// <summary>State the plugin wrote earlier: everything in the schema is accepted.</summary>
    State,
    /// <summary>Provider configuration: like inputs, and non-string values may arrive JSON-encoded in strings.</summary>
    Config,
}

/// <summary>
/// google.protobuf.Struct ⇄ model JSON, keyed by the schema: camelCase on the wire, snake_case in
/// the model; secrets unwrapped on the way in and re-wrapped on the way out (plus every sensitive
/// attribute); unknown sentinels kept; Struct's doubles turned back into integers where the schema
/// says integer.
/// </summary>
internal static class PropertyCodec
{
    private const string EngineKeyPrefix = "__";

    public static DecodedProperties Decode(Struct? properties, Shape shape, DecodeMode mode)
    {
        var decoded = new DecodedProperties { Value = new JsonObject() };
        if (properties is not null)
            DecodeFields(properties, shape, AttrPath.Root, decoded.Value, decoded, mode);
        return decoded;
    }

    /// <summary>
    /// Encodes model JSON as a Struct. Paths in <paramref name="secrets"/> and every sensitive
    /// attribute are wrapped as secrets; names the schema lacks are dropped.
    /// </summary>
    public static Struct Encode(JsonObject value, Shape shape, IReadOnlySet<AttrPath>? secrets = null)
    {
        var result = new Struct();
        EncodeFields(value, shape, AttrPath.Root, secrets ?? new HashSet<AttrPath>(), insideSecret: false, result);
        return result;
    }

    private static void DecodeFields(Struct source, Shape shape, AttrPath path, JsonObject target, DecodedProperties decoded, DecodeMode mode)
    {
        foreach (var (wireName, value) in source.Fields)
        {
            // Engine-owned keys (__defaults, __internal) and the provider's own "version" are not settings.
            if (wireName.StartsWith(EngineKeyPrefix, StringComparison.Ordinal) || (mode == DecodeMode.Config && wireName == "version" && path == AttrPath.Root))
                continue;
            var field = shape.FindWire(wireName);
            if (field is null)
            {
                if (mode != DecodeMode.State)
                    decoded.Problems.Add(new PropertyProblem(path.Attr(JsonNamingPolicy.SnakeCaseLower.ConvertName(wireName)), "is not a property of this type."));
                continue;
            }
            var child = path.Attr(field.Name);
            if (field.ReadOnly && mode != DecodeMode.State)
            {
                if (value.KindCase != Value.KindOneofCase.NullValue)
                    decoded.Problems.Add(new PropertyProblem(child, "is reported by the agent and cannot be set."));
                continue;
            }
            if (DecodeValue(value, field.Shape, child, decoded, mode) is { } node)
                target[field.Name] = node;
        }
    }

    private static JsonNode? DecodeValue(Value value, Shape shape, AttrPath path, DecodedProperties decoded, DecodeMode mode)
    {
        switch (value.KindCase)
        {
            case Value.KindOneofCase.None:
            case Value.KindOneofCase.NullValue:
                return null;
            case Value.KindOneofCase.StringValue:
                return DecodeString(value.StringValue, shape, path, decoded, mode);
            case Value.KindOneofCase.BoolValue:
                if (shape.Kind == ValueKind.Bool)
                    return JsonValue.Create(value.BoolValue);
                return Mismatch(shape, "a boolean", path, decoded);
            case Value.KindOneofCase.NumberValue:
                return DecodeNumber(value.NumberValue, shape, path, decoded);
            case Value.KindOneofCase.ListValue:
                if (shape.Kind is not (ValueKind.List or ValueKind.Set))
                    return Mismatch(shape, "a list", path, decoded);
                var array = new JsonArray();
                var index = 0;
                foreach (var element in value.ListValue.Values)
                {
                    // A null element keeps its place so later indexes (and error paths) stay right.
                    array.Add(DecodeValue(element, shape.Element!, path.At(index), decoded, mode));
                    index++;
                }
                return array;
            case Value.KindOneofCase.StructValue:
                return DecodeStruct(value.StructValue, shape, path, decoded, mode);
            default:
                return null;
        }
    }

    private static JsonNode? DecodeStruct(Struct value, Shape shape, AttrPath path, DecodedProperties decoded, DecodeMode mode)
    {
        if (value.Fields.TryGetValue(Sentinels.SignatureKey, out var signature))
        {
            switch (signature.StringValue)
            {
                case Sentinels.SecretSignature:
                    decoded.Secrets.Add(path);
                    return value.Fields.TryGetValue("value", out var inner) ? DecodeValue(inner, shape, path, decoded, mode) : null;
                case Sentinels.ResourceReferenceSignature:
                    // Only a resource's id can fill a string setting; an empty id means not yet known.
                    var id = value.Fields.TryGetValue("id", out var idValue) ? idValue.StringValue : null;
                    return id is null
                        ? Mismatch(shape, "a resource reference without an id", path, decoded)
                        : DecodeString(id.Length == 0 ? Sentinels.Unknown : id, shape, path, decoded, mode);
                default:
                    decoded.Problems.Add(new PropertyProblem(path, "assets, archives and output values are not supported here."));
                    return null;
            }
        }
        if (shape.Kind == ValueKind.Object)
        {
            var obj = new JsonObject();
            DecodeFields(value, shape, path, obj, decoded, mode);
            return obj;
        }
        if (shape.Kind == ValueKind.Map)
        {
            var map = new JsonObject();
            foreach (var (key, element) in value.Fields)
                map[key] = DecodeValue(element, shape.Element!, path.Key(key), decoded, mode);
            return map;
        }
        return Mismatch(shape, "an object", path, decoded);
    }

    private static JsonNode? DecodeString(string text, Shape shape, AttrPath path, DecodedProperties decoded, DecodeMode mode)
    {
        if (Sentinels.IsUnknown(text))
        {
            decoded.Unknowns.Add(path);
            return JsonValue.Create(Sentinels.Unknown);
        }
        if (shape.Kind == ValueKind.String)
            return JsonValue.Create(text);
        if (mode == DecodeMode.Config)
        {
            // Stack config and explicit provider inputs carry non-string values as JSON text.
            Value parsed;
            try
            {
                parsed = JsonToValue(JsonNode.Parse(text));
            }
            catch (JsonException)
            {
                decoded.Problems.Add(new PropertyProblem(path, $"expected {Describe(shape)}, got \"{Model.Validation.Validator.Printable(text)}\"."));
                return null;
            }
            return DecodeValue(parsed, shape, path, decoded, DecodeMode.Inputs);
        }
        return Mismatch(shape, "a string", path, decoded);
    }

    private static JsonNode? DecodeNumber(double number, Shape shape, AttrPath path, DecodedProperties decoded)
    {
        switch (shape.Kind)
        {
            case ValueKind.Number:
                return JsonValue.Create(number);
            case ValueKind.Integer:
                if (double.IsFinite(number) && Math.Floor(number) == number && Math.Abs(number) <= 9_007_199_254_740_992d)
                    return JsonValue.Create((long)number);
                decoded.Problems.Add(new PropertyProblem(path, $"expected a whole number, got {number.ToString(CultureInfo.InvariantCulture)}."));
                return null;
            default:
                return Mismatch(shape, "a number", path, decoded);
        }
    }

    private static JsonNode? Mismatch(Shape shape, string got, AttrPath path, DecodedProperties decoded)
    {
        decoded.Problems.Add(new PropertyProblem(path, $"expected {Describe(shape)}, got {got}."));
        return null;
    }

    private static string Describe(Shape shape) => shape.Kind switch
    {
        ValueKind.String => "a string",
        ValueKind.Integer => "a whole number",
        ValueKind.Number => "a number",
        ValueKind.Bool => "a boolean",
        ValueKind.List or ValueKind.Set => "a list",
        ValueKind.Map => "a map",
        _ => "an object",
    };

    private static void EncodeFields(JsonObject source, Shape shape, AttrPath path, IReadOnlySet<AttrPath> secrets, bool insideSecret, Struct target)
    {
        foreach (var (name, node) in source)
        {
            if (node is null || shape.Find(name) is not { } field)
                continue;
            var child = path.Attr(name);
            target.Fields[field.WireName] = EncodeValue(node, field.Shape, child, secrets, insideSecret, field.Sensitive);
        }
    }

    private static Value EncodeValue(JsonNode? node, Shape shape, AttrPath path, IReadOnlySet<AttrPath> secrets, bool insideSecret, bool sensitive)
    {
        var secret = !insideSecret && node is not null && (sensitive || secrets.Contains(path));
        var value = EncodePlain(node, shape, path, secrets, insideSecret || secret);
        if (!secret)
            return value;
        var wrapper = new Struct();
        wrapper.Fields[Sentinels.SignatureKey] = Value.ForString(Sentinels.SecretSignature);
        wrapper.Fields["value"] = value;
        return Value.ForStruct(wrapper);
    }

    private static Value EncodePlain(JsonNode? node, Shape shape, AttrPath path, IReadOnlySet<AttrPath> secrets, bool insideSecret)
    {
        switch (node)
        {
            case null:
                return Value.ForNull();
            case JsonArray array:
                var list = new ListValue();
                for (var i = 0; i < array.Count; i++)
                    list.Values.Add(EncodeValue(array[i], shape.Element ?? shape, path.At(i), secrets, insideSecret, sensitive: false));
                return new Value { ListValue = list };
            case JsonObject obj:
                var result = new Struct();
                if (shape.Kind == ValueKind.Map)
                {
                    foreach (var (key, element) in obj)
                        result.Fields[key] = EncodeValue(element, shape.Element!, path.Key(key), secrets, insideSecret, sensitive: false);
                }
                else
                {
                    EncodeFields(obj, shape, path, secrets, insideSecret, result);
                }
                return Value.ForStruct(result);
            default:
                return EncodeScalar((JsonValue)node);
        }
    }

    private static Value EncodeScalar(JsonValue value) => value.GetValueKind() switch
    {
        JsonValueKind.String => Value.ForString(value.GetValue<string>()),
        JsonValueKind.True => Value.ForBool(true),
        JsonValueKind.False => Value.ForBool(false),
        JsonValueKind.Number => Value.ForNumber(double.Parse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)),
        _ => Value.ForNull(),
    };

    /// <summary>Plain JSON → Value, for config values that arrive JSON-encoded.</summary>
    public static Value JsonToValue(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return Value.ForNull();
            case JsonArray array:
                var list = new ListValue();
                foreach (var element in array)
                    list.Values.Add(JsonToValue(element));
                return new Value { ListValue = list };
            case JsonObject obj:
                var result = new Struct();
                foreach (var (key, element) in obj)
                    result.Fields[key] = JsonToValue(element);
                return Value.ForStruct(result);
            default:
                return EncodeScalar((JsonValue)node);
        }
    }
}
