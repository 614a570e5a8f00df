using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kvm.Model.Schema;

/// <summary>The shape of a value in the neutral schema tree.</summary>
public enum ValueKind
{
    /// <summary>Text.</summary>
    String,
    /// <summary>Whole number.</summary>
    Integer,
    /// <summary>Any number.</summary>
    Number,
    /// <summary>true/false.</summary>
    Bool,
    /// <summary>Ordered list.</summary>
    List,
    /// <summary>Unordered list without duplicates.</summary>
    Set,
    /// <summary>String-keyed map (device slots).</summary>
    Map,
    /// <summary>Nested object with its own attributes.</summary>
    Object,
}

/// <summary>A type in the neutral schema tree: a primitive, a collection of an element type, or an object.</summary>
public sealed record SchemaType(ValueKind Kind, SchemaType? Element = null, ObjectSchema? Object = null)
{
    /// <summary>True for string, integer, number and bool.</summary>
    public bool IsPrimitive => Kind is ValueKind.String or ValueKind.Integer or ValueKind.Number or ValueKind.Bool;
}

/// <summary>One attribute of an object: its names in every projection, its type and its declaration.</summary>
public sealed class AttributeSchema
{
    internal AttributeSchema(PropertyInfo property, string name, SchemaType type, SettingAttribute setting)
    {
        Property = property;
        Name = name;
        Type = type;
        Setting = setting;
    }

    /// <summary>The CLR property behind it.</summary>
    public PropertyInfo Property { get; }

    /// <summary>snake_case name: HCL attribute and agent JSON property.</summary>
    public string Name { get; }

    /// <summary>camelCase name used by Pulumi.</summary>
    public string PulumiName => Naming.ToCamel(Name);

    /// <summary>The value type.</summary>
    public SchemaType Type { get; }

    /// <summary>The declaration: description, default, validation, update behaviour.</summary>
    public SettingAttribute Setting { get; }

    /// <summary>Description plus the documented default, ready for docs and schemas.</summary>
    public string Description => Setting.Description;

    /// <summary>Reads the attribute's value from an instance of the declaring record.</summary>
    public object? GetValue(object owner) => Property.GetValue(owner);

    internal void SetValue(object owner, object? value) => Property.SetValue(owner, value);

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>The attributes of one record type, in declaration order (base type first).</summary>
public sealed class ObjectSchema
{
    private readonly Dictionary<string, AttributeSchema> _byName = new(StringComparer.Ordinal);
    private readonly List<AttributeSchema> _attributes = [];

    internal ObjectSchema(Type clrType) => ClrType = clrType;

    /// <summary>The record type.</summary>
    public Type ClrType { get; }

    /// <summary>Every attribute.</summary>
    public IReadOnlyList<AttributeSchema> Attributes => _attributes;

    /// <summary>The attribute with this snake_case name, or null.</summary>
    public AttributeSchema? Find(string name) => _byName.GetValueOrDefault(name);

    internal void Add(AttributeSchema attribute)
    {
        _attributes.Add(attribute);
        _byName.Add(attribute.Name, attribute);
    }
}

/// <summary>A top-level resource: its names and its object schema.</summary>
public sealed record ResourceSchema(string Name, string Description, ObjectSchema Object)
{
    /// <summary>Terraform type name, e.g. <c>kvm_storage_pool</c>.</summary>
    public string TerraformName => "kvm_" + Name;

    /// <summary>PascalCase type name, e.g. <c>StoragePool</c>.</summary>
    public string PascalName => Naming.ToPascal(Name);

    /// <summary>Pulumi resource token, e.g. <c>kvm:index/storagePool:StoragePool</c>.</summary>
    public string PulumiToken => $"kvm:index/{Naming.ToCamel(Name)}:{PascalName}";
}

/// <summary>
/// Builds the neutral schema tree from the model records by reflection, once per type.
/// This is the only reflection over the model; every projection reads its result.
/// </summary>
public static class Schemas
{
    private static readonly ConcurrentDictionary<Type, ObjectSchema> Cache = new();
    private static readonly Lock BuildLock = new();
    private static readonly Dictionary<Type, ObjectSchema> InProgress = [];

    /// <summary>The object schema of a record type.</summary>
    public static ObjectSchema For(Type type)
    {
        if (Cache.TryGetValue(type, out var schema))
            return schema;
        // Only complete schemas are published: a reader must never see one whose attributes are still being added.
        lock (BuildLock)
        {
            if (Cache.TryGetValue(type, out schema) || InProgress.TryGetValue(type, out schema))
                return schema;
            schema = Build(type);
            Cache[type] = schema;
            return schema;
        }
    }

    /// <summary>The object schema of a record type.</summary>
    public static ObjectSchema For<T>() => For(typeof(T));

    /// <summary>The resource schema of a record marked with <see cref="ResourceAttribute"/>.</summary>
    public static ResourceSchema Resource<T>() => Resource(typeof(T));

    /// <summary>The resource schema of a record marked with <see cref="ResourceAttribute"/>.</summary>
    public static ResourceSchema Resource(Type type)
    {
        var attr = type.GetCustomAttribute<ResourceAttribute>()
            ?? throw new InvalidOperationException($"{type.Name} is not marked [Resource].");
        return new ResourceSchema(attr.Name, attr.Description, For(type));
    }

    private static ObjectSchema Build(Type type)
    {
        var schema = new ObjectSchema(type);
        // Known before recursing so self-referencing types terminate.
        InProgress[type] = schema;
        foreach (var property in OrderedProperties(type))
        {
            var setting = property.GetCustomAttribute<SettingAttribute>();
            if (setting is null)
                continue;
            var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name
                ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name);
            schema.Add(new AttributeSchema(property, name, TypeOf(property.PropertyType, setting, property), setting));
        }
        InProgress.Remove(type);
        return schema;
    }

    // Base-type properties first, each type in declaration order, so docs and schemas read naturally.
    private static IEnumerable<PropertyInfo> OrderedProperties(Type type)
    {
        var chain = new Stack<Type>();
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
            chain.Push(t);
        foreach (var t in chain)
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                         .OrderBy(p => p.MetadataToken))
                yield return p;
    }

    private static SchemaType TypeOf(Type clr, SettingAttribute setting, PropertyInfo where)
    {
        clr = Nullable.GetUnderlyingType(clr) ?? clr;
        if (clr == typeof(string)) return new SchemaType(ValueKind.String);
        if (clr == typeof(bool)) return new SchemaType(ValueKind.Bool);
        if (clr == typeof(int) || clr == typeof(long)) return new SchemaType(ValueKind.Integer);
        if (clr == typeof(double) || clr == typeof(decimal)) return new SchemaType(ValueKind.Number);
        if (clr.IsGenericType)
        {
            var def = clr.GetGenericTypeDefinition();
            var args = clr.GetGenericArguments();
            if (def == typeof(List<>) || def == typeof(IReadOnlyList<>))
                return new SchemaType(setting.Set ? ValueKind.Set : ValueKind.List, ElementOf(args[0], where));
            if ((def == typeof(Dictionary<,>) || def == typeof(IReadOnlyDictionary<,>)) && args[0] == typeof(string))
                return new SchemaType(ValueKind.Map, ElementOf(args[1], where));
        }
        if (clr.IsClass)
            return new SchemaType(ValueKind.Object, Object: For(clr));
        throw new InvalidOperationException($"{where.DeclaringType?.Name}.{where.Name}: unsupported type {clr.Name}.");
    }

    private static SchemaType ElementOf(Type clr, PropertyInfo where) =>
        TypeOf(clr, new SettingAttribute(""), where);
}

/// <summary>The one place names change case between projections.</summary>
public static class Naming
{
    /// <summary>snake_case → camelCase (<c>size_gib</c> → <c>sizeGib</c>).</summary>
    public static string ToCamel(string snake)
    {
        var pascal = ToPascal(snake);
        return pascal.Length == 0 ? pascal : char.ToLowerInvariant(pascal[0]) + pascal[1..];
    }

    /// <summary>snake_case → PascalCase (<c>storage_pool</c> → <c>StoragePool</c>).</summary>
    public static string ToPascal(string snake) =>
        string.Concat(snake.Split('_', StringSplitOptions.RemoveEmptyEntries)
            .Select(part => char.ToUpperInvariant(part[0]) + part[1..]));
}
