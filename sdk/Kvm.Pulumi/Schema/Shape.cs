using System.Collections.Concurrent;
using Kvm.Model.Schema;

namespace Kvm.Pulumi.Schema;

/// <summary>
/// One property as the Pulumi projection sees it: a model attribute, or one the plugin adds
/// (the resource's <c>host</c>, the provider settings) which the model knows nothing of.
/// </summary>
internal sealed record Field(
    string Name,
    Shape Shape,
    string Description,
    UpdateKind Update = UpdateKind.Restart,
    bool Required = false,
    bool Computed = false,
    bool ReadOnly = false,
    bool Sensitive = false)
{
    /// <summary>camelCase name on the wire and in the SDKs.</summary>
    public string WireName => Naming.ToCamel(Name);

    /// <summary>A field the user sets (everything but agent-reported values).</summary>
    public bool IsInput => !ReadOnly;

    /// <summary>The effective value when unset, for the description only: SDKs must not send it.</summary>
    public object? Default { get; init; }

    /// <summary>The documented default when it depends on other settings.</summary>
    public string? DefaultText { get; init; }

    /// <summary>
    /// A whole number that may not fit 32 bits (byte counts): Pulumi's "integer" is an int in the
    /// generated SDKs, so the schema offers these as "number" while the plugin still sends whole numbers.
    /// </summary>
    public bool Wide { get; init; }
}

/// <summary>
/// The type of a value, walked by the schema projection, the Struct codec and the diff alike,
/// so all three agree on names, numbers and nesting.
/// </summary>
internal sealed class Shape
{
    private static readonly ConcurrentDictionary<ObjectSchema, Shape> Objects = new();
    private readonly Dictionary<string, Field> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Field> _byWireName = new(StringComparer.Ordinal);
    private readonly List<Field> _fields = [];

    private Shape(ValueKind kind, Shape? element, Type? clrType)
    {
        Kind = kind;
        Element = element;
        ClrType = clrType;
    }

    public static readonly Shape String = new(ValueKind.String, null, null);
    public static readonly Shape Integer = new(ValueKind.Integer, null, null);
    public static readonly Shape Number = new(ValueKind.Number, null, null);
    public static readonly Shape Bool = new(ValueKind.Bool, null, null);

    public ValueKind Kind { get; }

    /// <summary>Element of a list, set or map.</summary>
    public Shape? Element { get; }

    /// <summary>The model record behind an object shape, when there is one (names its Pulumi type).</summary>
    public Type? ClrType { get; }

    public IReadOnlyList<Field> Fields => _fields;

    public Field? Find(string name) => _byName.GetValueOrDefault(name);

    public Field? FindWire(string wireName) => _byWireName.GetValueOrDefault(wireName);

    public static Shape ListOf(Shape element) => new(ValueKind.List, element, null);

    public static Shape MapOf(Shape element) => new(ValueKind.Map, element, null);

    /// <summary>An object with the given fields, not backed by a model record.</summary>
    public static Shape ObjectOf(IEnumerable<Field> fields, Type? clrType = null)
    {
        var shape = new Shape(ValueKind.Object, null, clrType);
        foreach (var field in fields)
            shape.Add(field);
        return shape;
    }

    /// <summary>The shape of a model record, with every attribute.</summary>
    public static Shape Of(ObjectSchema schema)
    {
        if (Objects.TryGetValue(schema, out var cached))
            return cached;
        var shape = new Shape(ValueKind.Object, null, schema.ClrType);
        // Publish before filling so recursive records terminate.
        if (!Objects.TryAdd(schema, shape))
            return Objects[schema];
        foreach (var attribute in schema.Attributes)
            shape.Add(FieldOf(attribute));
        return shape;
    }

    public static Field FieldOf(AttributeSchema attribute)
    {
        var s = attribute.Setting;
        return new Field(attribute.Name, Of(attribute.Type), attribute.Description, s.Update, s.Required, s.Computed, s.ReadOnly, s.Sensitive)
        {
            Default = s.Default,
            DefaultText = s.DefaultText,
            Wide = (Nullable.GetUnderlyingType(attribute.Property.PropertyType) ?? attribute.Property.PropertyType) == typeof(long)
                && (double.IsNaN(s.Max) || s.Max > int.MaxValue),
        };
    }

    public static Shape Of(SchemaType type) => type.Kind switch
    {
        ValueKind.String => String,
        ValueKind.Integer => Integer,
        ValueKind.Number => Number,
        ValueKind.Bool => Bool,
        ValueKind.List or ValueKind.Set => new Shape(type.Kind, Of(type.Element!), null),
        ValueKind.Map => MapOf(Of(type.Element!)),
        _ => Of(type.Object!),
    };

    /// <summary>The shape at <paramref name="path"/> below this one, or null when the path leaves the schema.</summary>
    public Shape? At(AttrPath path)
    {
        var shape = this;
        foreach (var step in path.Steps)
        {
            shape = step.Kind == PathStepKind.Attribute ? shape?.Find(step.Name!)?.Shape : shape?.Element;
            if (shape is null)
                return null;
        }
        return shape;
    }

    /// <summary>The field a path ends in (the last attribute step), or null.</summary>
    public Field? FieldAt(AttrPath path)
    {
        var shape = this;
        Field? field = null;
        foreach (var step in path.Steps)
        {
            if (step.Kind == PathStepKind.Attribute)
            {
                field = shape?.Find(step.Name!);
                shape = field?.Shape;
            }
            else
            {
                shape = shape?.Element;
            }
            if (shape is null)
                return null;
        }
        return field;
    }

    /// <summary>The most disruptive update kind of this value and everything inside it.</summary>
    public UpdateKind WorstUpdate(UpdateKind own)
    {
        var worst = own;
        var visited = new HashSet<Shape>();
        Visit(this);
        return worst;

        void Visit(Shape shape)
        {
            if (!visited.Add(shape))
                return;
            if (shape.Element is { } element)
                Visit(element);
            foreach (var field in shape.Fields.Where(f => f.IsInput))
            {
                if (field.Update > worst)
                    worst = field.Update;
                Visit(field.Shape);
            }
        }
    }

    private void Add(Field field)
    {
        _fields.Add(field);
        _byName.Add(field.Name, field);
        _byWireName.Add(field.WireName, field);
    }
}
