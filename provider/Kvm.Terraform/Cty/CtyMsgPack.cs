namespace Kvm.Terraform.Cty;

/// <summary>
/// cty's msgpack encoding (tfplugin6 <c>DynamicValue.msgpack</c>), driven by the schema type.
/// See research/tfplugin.md §3.2.
/// </summary>
public static class CtyMsgPack
{
    /// <summary>Extension type code of an unknown that carries refinements.</summary>
    internal const sbyte RefinedUnknownExt = 0x0C;

    // Values can nest types through "dynamic" wrappers without bound; a hostile payload must not overflow the stack.
    private const int MaxDepth = 256;

    private static readonly byte[] PlainUnknown = [0xD4, 0x00, 0x00];

    public static CtyValue Decode(ReadOnlySpan<byte> data, CtyType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var reader = new MsgPackReader(data);
        var value = Read(ref reader, type, 0);
        if (!reader.End)
        {
            throw new CtyException($"{data.Length - reader.Position} unexpected bytes after the msgpack value");
        }
        return value;
    }

    public static byte[] Encode(CtyValue value, CtyType type)
    {
        var writer = new MsgPackWriter();
        Write(writer, value, type);
        return writer.ToArray();
    }

    private static CtyValue Read(ref MsgPackReader reader, CtyType type, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new CtyException("value is nested too deeply");
        }
        var code = reader.PeekCode();
        if (MsgPackReader.IsExt(code))
        {
            return ReadUnknown(ref reader, type);
        }
        if (type.Kind == CtyKind.Dynamic)
        {
            return ReadDynamic(ref reader, depth);
        }
        if (reader.TryReadNil())
        {
            return CtyValue.Null(type);
        }
        switch (type.Kind)
        {
            case CtyKind.String:
                return CtyValue.String(reader.ReadString());
            case CtyKind.Number:
                return CtyValue.Number(reader.ReadNumber());
            case CtyKind.Bool:
                return CtyValue.Bool(reader.ReadBool());
            case CtyKind.List or CtyKind.Set:
            {
                var count = reader.ReadArrayHeader(type.Kind == CtyKind.List ? "list" : "set");
                var items = count == 0 ? [] : new CtyValue[count];
                var element = type.ElementType;
                for (var i = 0; i < items.Length; i++)
                {
                    try
                    {
                        items[i] = Read(ref reader, element, depth + 1);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(i)))
                    {
                        throw;
                    }
                }
                return CtyValue.CreateKnown(type, items);
            }
            case CtyKind.Tuple:
            {
                var types = type.Types;
                var count = reader.ReadArrayHeader("tuple");
                if (count != types.Length)
                {
                    throw new CtyException($"a tuple of length {types.Length} is required ({count} given)");
                }
                var items = count == 0 ? [] : new CtyValue[count];
                for (var i = 0; i < items.Length; i++)
                {
                    try
                    {
                        items[i] = Read(ref reader, types[i], depth + 1);
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
                var count = reader.ReadMapHeader("map");
                var keys = new string[count];
                var values = new CtyValue[count];
                var element = type.ElementType;
                for (var i = 0; i < count; i++)
                {
                    keys[i] = reader.ReadString("map key");
                    try
                    {
                        values[i] = Read(ref reader, element, depth + 1);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(keys[i])))
                    {
                        throw;
                    }
                }
                return CtyValue.CreateMap(type, keys, values);
            }
            case CtyKind.Object:
                return ReadObject(ref reader, type, depth);
            default:
                throw new CtyException($"unsupported type {type}");
        }
    }

    private static CtyValue ReadObject(ref MsgPackReader reader, CtyType type, int depth)
    {
        var names = type.Utf8Names;
        var types = type.Types;
        var count = reader.ReadMapHeader("object");
        if (count != names.Length)
        {
            throw new CtyException($"an object with {names.Length} attributes is required ({count} given)");
        }
        var items = count == 0 ? [] : new CtyValue[count];
        for (var i = 0; i < count; i++)
        {
            var key = reader.ReadStringBytes("attribute name");
            // Terraform sends keys sorted like ours, so the i-th name is almost always a hit.
            var index = key.SequenceEqual(names[i]) ? i : FindName(names, key);
            if (index < 0)
            {
                throw new CtyException($"unsupported attribute \"{MsgPackReader.StrictUtf8.GetString(key)}\"");
            }
            if (items[index] is not null)
            {
                throw new CtyException($"duplicate attribute \"{type.Names[index]}\"");
            }
            try
            {
                items[index] = Read(ref reader, types[index], depth + 1);
            }
            catch (CtyException e) when (e.Prepend(CtyPathStep.Attribute(type.Names[index])))
            {
                throw;
            }
        }
        return CtyValue.CreateKnown(type, items);
    }

    private static int FindName(byte[][] names, ReadOnlySpan<byte> key)
    {
        for (var i = 0; i < names.Length; i++)
        {
            if (key.SequenceEqual(names[i]))
            {
                return i;
            }
        }
        return -1;
    }

    private static CtyValue ReadDynamic(ref MsgPackReader reader, int depth)
    {
        if (reader.TryReadNil())
        {
            return CtyValue.DynamicNull;
        }
        var count = reader.ReadArrayHeader("dynamic value ([type, value] array)");
        if (count != 2)
        {
            throw new CtyException("dynamic value array must have exactly two elements");
        }
        var type = CtyType.ParseJson(reader.ReadStringBytes("dynamic value type"));
        return Read(ref reader, type, depth + 1);
    }

    private static CtyValue ReadUnknown(ref MsgPackReader reader, CtyType type)
    {
        var body = reader.ReadExt(out var extType);
        // Other codes, and bodies too short to hold a map, are plain unknowns: Terraform's own
        // encoder uses a one-byte body for "no refinements".
        if (body.Length <= 1 || extType != RefinedUnknownExt || type.Kind == CtyKind.Dynamic)
        {
            return CtyValue.Unknown(type);
        }
        var r = new MsgPackReader(body);
        var refinements = CtyRefinements.None;
        try
        {
            var count = r.ReadMapHeader("refinements map");
            for (var i = 0; i < count; i++)
            {
                var key = r.ReadInt64("refinement key");
                switch (key)
                {
                    case 1:
                        if (r.ReadBool())
                        {
                            // "definitely null" collapses to a known null, as in cty.
                            return CtyValue.Null(type);
                        }
                        refinements = refinements with { NotNull = true };
                        break;
                    case 2:
                        Require(type.Kind == CtyKind.String, "string prefix refinement for non-string type");
                        refinements = refinements with { StringPrefix = r.ReadString("string prefix refinement") };
                        break;
                    case 3 or 4:
                        Require(type.Kind == CtyKind.Number, "number bound refinement for non-number type");
                        Require(r.ReadArrayHeader("number bound") == 2, "number bound refinement must be a [number, bool] array");
                        var bound = new CtyNumberBound(r.ReadNumber(), r.ReadBool());
                        refinements = key == 3 ? refinements with { NumberLowerBound = bound } : refinements with { NumberUpperBound = bound };
                        break;
                    case 5 or 6:
                        Require(type.IsCollection, "length bound refinement for non-collection type");
                        var length = r.ReadInt64("length bound refinement");
                        refinements = key == 5 ? refinements with { LengthLowerBound = length } : refinements with { LengthUpperBound = length };
                        break;
                    default:
                        // Unknown keys are future refinements: ignore them.
                        r.Skip();
                        break;
                }
            }
        }
        catch (CtyException e) when (e.Path.IsRoot)
        {
            throw new CtyException($"invalid unknown value refinements: {e.Detail}", e);
        }
        return CtyValue.Unknown(type, refinements);

        static void Require(bool condition, string message)
        {
            if (!condition)
            {
                throw new CtyException(message);
            }
        }
    }

    private static void Write(MsgPackWriter writer, CtyValue value, CtyType type)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (type.Kind == CtyKind.Dynamic)
        {
            if (value.Type.Kind == CtyKind.Dynamic)
            {
                // Null or unknown of unknown type: no wrapper, and never refined.
                if (value.IsNull)
                {
                    writer.WriteNil();
                }
                else
                {
                    writer.WriteRaw(PlainUnknown);
                }
                return;
            }
            writer.WriteArrayHeader(2);
            writer.WriteBinary(value.Type.ToJsonBytes());
            Write(writer, value, value.Type);
            return;
        }
        if (!value.IsKnown)
        {
            WriteUnknown(writer, value.Refinements);
            return;
        }
        if (value.IsNull)
        {
            writer.WriteNil();
            return;
        }
        if (value.Type.Kind != type.Kind)
        {
            throw new CtyException($"{Describe(type)} is required, but the value is of type {value.Type}");
        }
        switch (type.Kind)
        {
            case CtyKind.String:
                writer.WriteString(value.AsString());
                break;
            case CtyKind.Number:
                WriteNumber(writer, value.AsNumber());
                break;
            case CtyKind.Bool:
                writer.WriteBool(value.AsBool());
                break;
            case CtyKind.List or CtyKind.Set:
            {
                var items = value.Items;
                var element = type.ElementType;
                writer.WriteArrayHeader(items.Length);
                for (var i = 0; i < items.Length; i++)
                {
                    try
                    {
                        Write(writer, items[i], element);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(i)))
                    {
                        throw;
                    }
                }
                break;
            }
            case CtyKind.Tuple:
            {
                var items = value.Items;
                var types = type.Types;
                if (items.Length != types.Length)
                {
                    throw new CtyException($"a tuple of length {types.Length} is required ({items.Length} given)");
                }
                writer.WriteArrayHeader(items.Length);
                for (var i = 0; i < items.Length; i++)
                {
                    try
                    {
                        Write(writer, items[i], types[i]);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(i)))
                    {
                        throw;
                    }
                }
                break;
            }
            case CtyKind.Map:
            {
                var keys = value.MapKeys;
                var values = value.MapValues;
                var element = type.ElementType;
                writer.WriteMapHeader(keys.Length);
                for (var i = 0; i < keys.Length; i++)
                {
                    writer.WriteString(keys[i]);
                    try
                    {
                        Write(writer, values[i], element);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Key(keys[i])))
                    {
                        throw;
                    }
                }
                break;
            }
            case CtyKind.Object:
            {
                if (!CtyType.SameNames(value.Type.Names, type.Names))
                {
                    throw new CtyException($"{type} is required, but the value is of type {value.Type}");
                }
                var items = value.Items;
                var names = type.Utf8Names;
                var types = type.Types;
                writer.WriteMapHeader(items.Length);
                for (var i = 0; i < items.Length; i++)
                {
                    writer.WriteUtf8String(names[i]);
                    try
                    {
                        Write(writer, items[i], types[i]);
                    }
                    catch (CtyException e) when (e.Prepend(CtyPathStep.Attribute(type.Names[i])))
                    {
                        throw;
                    }
                }
                break;
            }
        }
    }

    private static string Describe(CtyType type) => type.Kind switch
    {
        CtyKind.Object => "an object",
        CtyKind.Tuple => "a tuple",
        _ => $"a {type.Kind.ToString().ToLowerInvariant()}",
    };

    /// <summary>Integers as (u)int, exact non-integers as float64, everything else as decimal text — as cty does.</summary>
    private static void WriteNumber(MsgPackWriter writer, CtyNumber n)
    {
        if (n.IsInfinity)
        {
            writer.WriteDouble(n.IsPositiveInfinity ? double.PositiveInfinity : double.NegativeInfinity);
        }
        else if (n.TryGetInt64(out var i))
        {
            writer.WriteInt(i);
        }
        else if (n.TryGetExactNonIntegerDouble(out var d))
        {
            writer.WriteDouble(d);
        }
        else
        {
            writer.WriteString(n.ToString());
        }
    }

    private static void WriteUnknown(MsgPackWriter writer, CtyRefinements r)
    {
        if (r.IsEmpty)
        {
            writer.WriteRaw(PlainUnknown);
            return;
        }
        var body = new MsgPackWriter(32);
        var count = 0;
        if (r.NotNull)
        {
            count++;
            body.WriteUInt(1);
            body.WriteBool(false);
        }
        if (r.StringPrefix is not null)
        {
            count++;
            body.WriteUInt(2);
            body.WriteString(r.StringPrefix);
        }
        if (r.NumberLowerBound is { } lower)
        {
            count++;
            body.WriteUInt(3);
            body.WriteArrayHeader(2);
            WriteNumber(body, lower.Value);
            body.WriteBool(lower.Inclusive);
        }
        if (r.NumberUpperBound is { } upper)
        {
            count++;
            body.WriteUInt(4);
            body.WriteArrayHeader(2);
            WriteNumber(body, upper.Value);
            body.WriteBool(upper.Inclusive);
        }
        if (r.LengthLowerBound is { } minLength)
        {
            count++;
            body.WriteUInt(5);
            body.WriteInt(minLength);
        }
        if (r.LengthUpperBound is { } maxLength)
        {
            count++;
            body.WriteUInt(6);
            body.WriteInt(maxLength);
        }
        var header = new MsgPackWriter(5);
        header.WriteMapHeader(count);
        writer.WriteExtHeader(RefinedUnknownExt, header.Length + body.Length);
        writer.WriteRaw(header.WrittenSpan);
        writer.WriteRaw(body.WrittenSpan);
    }
}
