using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Kvm.Terraform.Cty;

/// <summary>
/// cty's JSON encoding: <c>RawState.json</c> and <c>DynamicValue.json</c>. Same shapes as msgpack,
/// numbers as JSON numbers (or decimal strings on input), dynamic values as
/// <c>{"value":…,"type":…}</c>, and no unknowns.
/// </summary>
public static class CtyJson
{
    internal static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 128 };

    /// <param name="json">UTF-8 JSON.</param>
    /// <param name="type">The schema type.</param>
    /// <param name="ignoreUnknownAttributes">
    /// Skip object keys the type does not have (cty rejects them). Useful when upgrading state
    /// written by a schema that had attributes since removed.
    /// </param>
    public static CtyValue Decode(ReadOnlySpan<byte> json, CtyType type, bool ignoreUnknownAttributes = false)
    {
        ArgumentNullException.ThrowIfNull(type);
        var reader = new Utf8JsonReader(json, ReaderOptions);
        try
        {
            Next(ref reader);
            var value = Read(ref reader, type, ignoreUnknownAttributes);
            if (reader.Read())
            {
                throw new CtyException("unexpected data after the JSON value");
            }
            return value;
        }
        catch (JsonException e)
        {
            throw new CtyException($"invalid JSON: {e.Message}", e);
        }
    }

    public static CtyValue Decode(string json, CtyType type, bool ignoreUnknownAttributes = false) =>
        Decode(Encoding.UTF8.GetBytes(json), type, ignoreUnknownAttributes);

    public static byte[] Encode(CtyValue value, CtyType type)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            Write(writer, value, type);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static string EncodeToString(CtyValue value, CtyType type) => Encoding.UTF8.GetString(Encode(value, type));

    private static CtyValue Read(ref Utf8JsonReader reader, CtyType type, bool ignoreUnknown)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return CtyValue.Null(type);
        }
        switch (type.Kind)
        {
            case CtyKind.Dynamic:
                return ReadDynamic(ref reader, ignoreUnknown);
            case CtyKind.String:
                return reader.TokenType switch
                {
                    JsonTokenType.String => CtyValue.String(reader.GetString()!),
                    JsonTokenType.Number => CtyValue.String(Encoding.UTF8.GetString(reader.ValueSpan)),
                    JsonTokenType.True => CtyValue.String("true"),
                    JsonTokenType.False => CtyValue.String("false"),
                    _ => throw Required("string", reader.TokenType),
                };
            case CtyKind.Number:
                return reader.TokenType switch
                {
                    JsonTokenType.Number => CtyValue.Number(ParseNumber(reader.ValueSpan)),
                    JsonTokenType.String => CtyValue.Number(ParseNumber(Encoding.UTF8.GetBytes(reader.GetString()!))),
                    _ => throw Required("number", reader.TokenType),
                };
            case CtyKind.Bool:
                return reader.TokenType switch
                {
                    JsonTokenType.True => CtyValue.True,
                    JsonTokenType.False => CtyValue.False,
                    JsonTokenType.String when reader.ValueTextEquals("true"u8) => CtyValue.True,
                    JsonTokenType.String when reader.ValueTextEquals("false"u8) => CtyValue.False,
                    _ => throw Required("bool", reader.TokenType),
                };
            case CtyKind.List or CtyKind.Set or CtyKind.Tuple:
            {
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    throw Required(type.Kind.ToString().ToLowerInvariant(), reader.TokenType);
                }
                var items = new List<CtyValue>();
                while (true)
                {
                    Next(ref reader);
                    if (reader.TokenType == JsonTokenType.EndArray)
                    {
                        break;
                    }
                    var i = items.Count;
                    CtyType element;
                    if (type.Kind == CtyKind.Tuple)
                    {
                        if (i >= type.Types.Length)
                        {
                            throw new CtyException($"a tuple of length {type.Types.Length} is required (too many elements)");
                        }
                        element = type.Types[i];
                    }
                    else
                    {
                        element = type.ElementType;
                    }
                    try
                    {
                        items.Add(Read(ref reader, element, ignoreUnknown));
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(i)))
                    {
                        throw;
                    }
                }
                if (type.Kind == CtyKind.Tuple && items.Count != type.Types.Length)
                {
                    throw new CtyException($"a tuple of length {type.Types.Length} is required ({items.Count} given)");
                }
                return CtyValue.CreateKnown(type, [.. items]);
            }
            case CtyKind.Map:
            {
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    throw Required("map", reader.TokenType);
                }
                var keys = new List<string>();
                var values = new List<CtyValue>();
                while (true)
                {
                    Next(ref reader);
                    if (reader.TokenType == JsonTokenType.EndObject)
                    {
                        break;
                    }
                    var key = reader.GetString()!;
                    Next(ref reader);
                    try
                    {
                        values.Add(Read(ref reader, type.ElementType, ignoreUnknown));
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(key)))
                    {
                        throw;
                    }
                    keys.Add(key);
                }
                return CtyValue.CreateMap(type, [.. keys], [.. values]);
            }
            case CtyKind.Object:
            {
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    throw Required("object", reader.TokenType);
                }
                var items = new CtyValue[type.Names.Length];
                while (true)
                {
                    Next(ref reader);
                    if (reader.TokenType == JsonTokenType.EndObject)
                    {
                        break;
                    }
                    var index = FindAttribute(ref reader, type);
                    if (index < 0)
                    {
                        if (!ignoreUnknown)
                        {
                            throw new CtyException($"unsupported attribute \"{reader.GetString()}\"");
                        }
                        reader.Skip();
                        continue;
                    }
                    if (items[index] is not null)
                    {
                        throw new CtyException($"duplicate attribute \"{type.Names[index]}\"");
                    }
                    Next(ref reader);
                    try
                    {
                        items[index] = Read(ref reader, type.Types[index], ignoreUnknown);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Attribute(type.Names[index])))
                    {
                        throw;
                    }
                }
                for (var i = 0; i < items.Length; i++)
                {
                    items[i] ??= CtyValue.Null(type.Types[i]);
                }
                return CtyValue.CreateKnown(type, items);
            }
            default:
                throw new CtyException($"unsupported type {type}");
        }
    }

    private static int FindAttribute(ref Utf8JsonReader reader, CtyType type)
    {
        if (!reader.ValueIsEscaped)
        {
            var names = type.Utf8Names;
            for (var i = 0; i < names.Length; i++)
            {
                if (reader.ValueSpan.SequenceEqual(names[i]))
                {
                    return i;
                }
            }
            return -1;
        }
        return type.IndexOfAttribute(reader.GetString()!);
    }

    private static CtyValue ReadDynamic(ref Utf8JsonReader reader, bool ignoreUnknown)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new CtyException("dynamic value must be a {\"value\": …, \"type\": …} object");
        }
        CtyType? type = null;
        Utf8JsonReader valueReader = default;
        var hasValue = false;
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                break;
            }
            if (reader.ValueTextEquals("type"u8))
            {
                Next(ref reader);
                type = CtyType.ReadJson(ref reader);
            }
            else if (reader.ValueTextEquals("value"u8))
            {
                Next(ref reader);
                // The type may come after the value: keep a copy of the reader and come back to it.
                valueReader = reader;
                hasValue = true;
                reader.Skip();
            }
            else
            {
                throw new CtyException($"invalid key \"{reader.GetString()}\" in dynamically-typed value");
            }
        }
        if (type is null)
        {
            throw new CtyException("missing type in dynamically-typed value");
        }
        if (!hasValue)
        {
            throw new CtyException("missing value in dynamically-typed value");
        }
        return Read(ref valueReader, type, ignoreUnknown);
    }

    private static CtyNumber ParseNumber(ReadOnlySpan<byte> text) => CtyNumber.TryParse(text, out var n)
        ? n
        : throw new CtyException($"number is required, found \"{Encoding.UTF8.GetString(text[..Math.Min(text.Length, 40)])}\"");

    private static CtyException Required(string what, JsonTokenType found) => new($"{what} is required, found {Describe(found)}");

    private static string Describe(JsonTokenType t) => t switch
    {
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        JsonTokenType.True or JsonTokenType.False => "bool",
        _ => t.ToString().ToLowerInvariant(),
    };

    private static void Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new CtyException("JSON input is truncated");
        }
    }

    /// <summary>Writes <paramref name="value"/> as cty JSON of <paramref name="type"/>.</summary>
    public static void Write(Utf8JsonWriter writer, CtyValue value, CtyType type)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!value.IsKnown)
        {
            throw new CtyException("value is not known: JSON cannot hold unknown values");
        }
        if (type.Kind == CtyKind.Dynamic && value.Type.Kind != CtyKind.Dynamic)
        {
            writer.WriteStartObject();
            writer.WritePropertyName("value"u8);
            Write(writer, value, value.Type);
            writer.WritePropertyName("type"u8);
            value.Type.WriteJson(writer);
            writer.WriteEndObject();
            return;
        }
        if (value.IsNull)
        {
            writer.WriteNullValue();
            return;
        }
        if (value.Type.Kind != type.Kind)
        {
            throw new CtyException($"{type} is required, but the value is of type {value.Type}");
        }
        switch (type.Kind)
        {
            case CtyKind.String:
                writer.WriteStringValue(value.AsString());
                break;
            case CtyKind.Number:
                var n = value.AsNumber();
                if (n.IsInfinity)
                {
                    throw new CtyException("cannot serialize infinity as JSON");
                }
                writer.WriteRawValue(n.ToString(), skipInputValidation: true);
                break;
            case CtyKind.Bool:
                writer.WriteBooleanValue(value.AsBool());
                break;
            case CtyKind.List or CtyKind.Set or CtyKind.Tuple:
            {
                var items = value.Items;
                if (type.Kind == CtyKind.Tuple && items.Length != type.Types.Length)
                {
                    throw new CtyException($"a tuple of length {type.Types.Length} is required ({items.Length} given)");
                }
                writer.WriteStartArray();
                for (var i = 0; i < items.Length; i++)
                {
                    try
                    {
                        Write(writer, items[i], type.Kind == CtyKind.Tuple ? type.Types[i] : type.ElementType);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(i)))
                    {
                        throw;
                    }
                }
                writer.WriteEndArray();
                break;
            }
            case CtyKind.Map:
            {
                var keys = value.MapKeys;
                var values = value.MapValues;
                writer.WriteStartObject();
                for (var i = 0; i < keys.Length; i++)
                {
                    writer.WritePropertyName(keys[i]);
                    try
                    {
                        Write(writer, values[i], type.ElementType);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(keys[i])))
                    {
                        throw;
                    }
                }
                writer.WriteEndObject();
                break;
            }
            case CtyKind.Object:
            {
                if (!CtyType.SameNames(value.Type.Names, type.Names))
                {
                    throw new CtyException($"{type} is required, but the value is of type {value.Type}");
                }
                var items = value.Items;
                writer.WriteStartObject();
                for (var i = 0; i < items.Length; i++)
                {
                    writer.WritePropertyName(type.Utf8Names[i]);
                    try
                    {
                        Write(writer, items[i], type.Types[i]);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Attribute(type.Names[i])))
                    {
                        throw;
                    }
                }
                writer.WriteEndObject();
                break;
            }
        }
    }
}
