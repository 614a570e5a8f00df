using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kvm.Terraform.Cty;

[Flags]
public enum CtyNodeOptions
{
    None = 0,

    /// <summary>Leave null object attributes out instead of writing JSON null.</summary>
    OmitNullAttributes = 1,

    /// <summary>Leave unknown object attributes out instead of throwing.</summary>
    OmitUnknownAttributes = 2,
}

/// <summary>
/// Plain JSON (the agent's API: snake_case names identical to the HCL attribute names) to and from
/// cty values. Unlike <see cref="CtyJson"/> there is no dynamic wrapper: dynamic positions hold the
/// bare value, and reading one infers the type as cty does for JSON (arrays become tuples, objects
/// become objects).
/// </summary>
public static class CtyJsonNode
{
    /// <summary>A known value as JSON; a null value gives C# null.</summary>
    public static JsonNode? ToNode(CtyValue value, CtyNodeOptions options = CtyNodeOptions.None)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!value.IsKnown)
        {
            throw new CtyException("value is not known");
        }
        if (value.IsNull)
        {
            return null;
        }
        switch (value.Type.Kind)
        {
            case CtyKind.String:
                return JsonValue.Create(value.AsString());
            case CtyKind.Number:
                return NumberNode(value.AsNumber());
            case CtyKind.Bool:
                return JsonValue.Create(value.AsBool());
            case CtyKind.List or CtyKind.Set or CtyKind.Tuple:
            {
                var items = value.Items;
                var array = new JsonArray();
                for (var i = 0; i < items.Length; i++)
                {
                    try
                    {
                        array.Add(ToNode(items[i], options));
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(i)))
                    {
                        throw;
                    }
                }
                return array;
            }
            case CtyKind.Map:
            {
                var keys = value.MapKeys;
                var values = value.MapValues;
                var obj = new JsonObject();
                for (var i = 0; i < keys.Length; i++)
                {
                    try
                    {
                        obj.Add(keys[i], ToNode(values[i], options));
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(keys[i])))
                    {
                        throw;
                    }
                }
                return obj;
            }
            case CtyKind.Object:
            {
                var names = value.Type.Names;
                var items = value.Items;
                var obj = new JsonObject();
                for (var i = 0; i < items.Length; i++)
                {
                    var item = items[i];
                    if ((item.IsNull && (options & CtyNodeOptions.OmitNullAttributes) != 0)
                        || (!item.IsKnown && (options & CtyNodeOptions.OmitUnknownAttributes) != 0))
                    {
                        continue;
                    }
                    try
                    {
                        obj.Add(names[i], ToNode(item, options));
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Attribute(names[i])))
                    {
                        throw;
                    }
                }
                return obj;
            }
            default:
                throw new CtyException($"unsupported type {value.Type}");
        }
    }

    private static JsonNode NumberNode(CtyNumber n)
    {
        if (n.TryGetInt64(out var l))
        {
            return JsonValue.Create(l);
        }
        if (n.IsInfinity)
        {
            throw new CtyException("cannot represent infinity in JSON");
        }
        // A JsonElement-backed node keeps the exact text (1e400, 0.1, 2^64) when serialized.
        return JsonNode.Parse(n.ToString())!;
    }

    /// <summary>
    /// JSON as a value of <paramref name="type"/>: missing or null attributes become typed nulls,
    /// properties the type lacks are ignored, numbers are exact.
    /// </summary>
    public static CtyValue FromNode(JsonNode? node, CtyType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (node is null)
        {
            return CtyValue.Null(type);
        }
        var kind = node.GetValueKind();
        if (kind == JsonValueKind.Null)
        {
            return CtyValue.Null(type);
        }
        switch (type.Kind)
        {
            case CtyKind.Dynamic:
                return FromNode(node, InferType(node));
            case CtyKind.String:
                return kind switch
                {
                    JsonValueKind.String => CtyValue.String(node.GetValue<string>()),
                    JsonValueKind.Number => CtyValue.String(NumberText(node)),
                    JsonValueKind.True => CtyValue.String("true"),
                    JsonValueKind.False => CtyValue.String("false"),
                    _ => throw Required("string", kind),
                };
            case CtyKind.Number:
                return kind switch
                {
                    JsonValueKind.Number => CtyValue.Number(ToNumber(node)),
                    JsonValueKind.String => CtyNumber.TryParse(node.GetValue<string>(), out var n)
                        ? CtyValue.Number(n)
                        : throw new CtyException($"number is required, found string \"{node.GetValue<string>()}\""),
                    _ => throw Required("number", kind),
                };
            case CtyKind.Bool:
                return kind switch
                {
                    JsonValueKind.True => CtyValue.True,
                    JsonValueKind.False => CtyValue.False,
                    JsonValueKind.String when node.GetValue<string>() == "true" => CtyValue.True,
                    JsonValueKind.String when node.GetValue<string>() == "false" => CtyValue.False,
                    _ => throw Required("bool", kind),
                };
            case CtyKind.List or CtyKind.Set or CtyKind.Tuple:
            {
                if (node is not JsonArray array)
                {
                    throw Required(type.Kind.ToString().ToLowerInvariant(), kind);
                }
                if (type.Kind == CtyKind.Tuple && array.Count != type.Types.Length)
                {
                    throw new CtyException($"a tuple of length {type.Types.Length} is required ({array.Count} given)");
                }
                var items = new CtyValue[array.Count];
                for (var i = 0; i < items.Length; i++)
                {
                    try
                    {
                        items[i] = FromNode(array[i], type.Kind == CtyKind.Tuple ? type.Types[i] : type.ElementType);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(i)))
                    {
                        throw;
                    }
                }
                return CtyValue.CreateKnown(type, items);
            }
            case CtyKind.Map:
            {
                if (node is not JsonObject obj)
                {
                    throw Required("map", kind);
                }
                var keys = new string[obj.Count];
                var values = new CtyValue[obj.Count];
                var i = 0;
                foreach (var (key, child) in obj)
                {
                    try
                    {
                        values[i] = FromNode(child, type.ElementType);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(key)))
                    {
                        throw;
                    }
                    keys[i++] = key;
                }
                return CtyValue.CreateMap(type, keys, values);
            }
            case CtyKind.Object:
            {
                if (node is not JsonObject obj)
                {
                    throw Required("object", kind);
                }
                var names = type.Names;
                var items = new CtyValue[names.Length];
                for (var i = 0; i < names.Length; i++)
                {
                    try
                    {
                        items[i] = obj.TryGetPropertyValue(names[i], out var child)
                            ? FromNode(child, type.Types[i])
                            : CtyValue.Null(type.Types[i]);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Attribute(names[i])))
                    {
                        throw;
                    }
                }
                return CtyValue.CreateKnown(type, items);
            }
            default:
                throw new CtyException($"unsupported type {type}");
        }
    }

    /// <summary>The type cty infers for JSON of unknown shape.</summary>
    public static CtyType InferType(JsonNode? node)
    {
        switch (node?.GetValueKind() ?? JsonValueKind.Null)
        {
            case JsonValueKind.String:
                return CtyType.String;
            case JsonValueKind.Number:
                return CtyType.Number;
            case JsonValueKind.True or JsonValueKind.False:
                return CtyType.Bool;
            case JsonValueKind.Array:
                return CtyType.Tuple(((JsonArray)node!).Select(InferType));
            case JsonValueKind.Object:
                var attributes = new List<KeyValuePair<string, CtyType>>();
                foreach (var (key, child) in (JsonObject)node!)
                {
                    attributes.Add(new(key, InferType(child)));
                }
                return CtyType.Object(attributes);
            default:
                return CtyType.Dynamic;
        }
    }

    private static CtyNumber ToNumber(JsonNode node)
    {
        var value = node.AsValue();
        // Parsed JSON: use the raw text, since decimal conversion would round past 28 digits.
        if (!value.TryGetValue<JsonElement>(out _))
        {
            if (value.TryGetValue<long>(out var l))
            {
                return CtyNumber.FromInt64(l);
            }
            if (value.TryGetValue<decimal>(out var d))
            {
                return CtyNumber.FromDecimal(d);
            }
        }
        var text = NumberText(node);
        return CtyNumber.TryParse(Encoding.UTF8.GetBytes(text), out var n)
            ? n
            : throw new CtyException($"number is required, found \"{text}\"");
    }

    // ToJsonString gives the original text for parsed JSON and the round-trip form for CLR numbers.
    private static string NumberText(JsonNode node) => node.ToJsonString();

    private static CtyException Required(string what, JsonValueKind found) =>
        new($"{what} is required, found {found.ToString().ToLowerInvariant()}");
}
