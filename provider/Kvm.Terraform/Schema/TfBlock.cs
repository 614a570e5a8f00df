using Google.Protobuf;
using Kvm.Model.Schema;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;

namespace Kvm.Terraform.Schema;

/// <summary>How an attribute's value arrives: from the user, from the agent, or both.</summary>
public enum TfPresence
{
    Required,
    Optional,
    /// <summary>Optional; the agent fills it when the user leaves it unset.</summary>
    OptionalComputed,
    Computed,
}

/// <summary>
/// One attribute of a Terraform block or nested object, with the model attribute it projects (null
/// for provider-only attributes such as <c>id</c>, <c>host</c>). Exactly one of <see cref="Type"/>
/// and <see cref="Nested"/> is set.
/// </summary>
public sealed class TfAttribute
{
    public required string Name { get; init; }
    public CtyType? Type { get; init; }
    public TfObject? Nested { get; init; }
    public required TfPresence Presence { get; init; }
    public bool Sensitive { get; init; }
    public required string Description { get; init; }
    public AttributeSchema? Model { get; init; }

    public bool IsComputed => Presence is TfPresence.Computed or TfPresence.OptionalComputed;

    public CtyType ImpliedType => Type ?? Nested!.ImpliedType;

    public Protocol.Tfplugin6.Schema.Types.Attribute ToProto()
    {
        var proto = new Protocol.Tfplugin6.Schema.Types.Attribute
        {
            Name = Name,
            Description = Description,
            DescriptionKind = StringKind.Markdown,
            Required = Presence == TfPresence.Required,
            Optional = Presence is TfPresence.Optional or TfPresence.OptionalComputed,
            Computed = IsComputed,
            Sensitive = Sensitive,
        };
        if (Nested is not null)
            proto.NestedType = Nested.ToProto();
        else
            proto.Type = ByteString.CopyFrom(Type!.ToJsonBytes());
        return proto;
    }
}

/// <summary>A protocol-v6 nested attribute type: an object, or a map/list/set of objects.</summary>
public sealed class TfObject
{
    private CtyType? _objectType;

    public required IReadOnlyList<TfAttribute> Attributes { get; init; }
    public required Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode Nesting { get; init; }

    public CtyType ObjectType => _objectType ??= CtyType.Object(Attributes.Select(a => new KeyValuePair<string, CtyType>(a.Name, a.ImpliedType)));

    public CtyType ImpliedType => Nesting switch
    {
        Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode.Single => ObjectType,
        Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode.Map => CtyType.Map(ObjectType),
        Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode.List => CtyType.List(ObjectType),
        Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode.Set => CtyType.Set(ObjectType),
        _ => throw new InvalidOperationException($"nesting {Nesting}"),
    };

    public TfAttribute? Find(string name) => Attributes.FirstOrDefault(a => a.Name == name);

    public Protocol.Tfplugin6.Schema.Types.Object ToProto()
    {
        var proto = new Protocol.Tfplugin6.Schema.Types.Object { Nesting = Nesting };
        proto.Attributes.AddRange(Attributes.Select(a => a.ToProto()));
        return proto;
    }
}

/// <summary>A nested block (only <c>timeouts</c>: attributes are the rule in protocol 6).</summary>
public sealed class TfNestedBlock
{
    public required string TypeName { get; init; }
    public required TfBlock Block { get; init; }

    public CtyType ImpliedType => Block.ImpliedType;

    public Protocol.Tfplugin6.Schema.Types.NestedBlock ToProto() => new()
    {
        TypeName = TypeName,
        Block = Block.ToProto(),
        Nesting = Protocol.Tfplugin6.Schema.Types.NestedBlock.Types.NestingMode.Single,
    };
}

/// <summary>A block: a resource, data source or provider schema body.</summary>
public sealed class TfBlock
{
    private CtyType? _impliedType;

    public required IReadOnlyList<TfAttribute> Attributes { get; init; }
    public IReadOnlyList<TfNestedBlock> BlockTypes { get; init; } = [];
    public string Description { get; init; } = "";

    /// <summary>The object type Terraform derives from this block; every value we send has exactly it.</summary>
    public CtyType ImpliedType => _impliedType ??= CtyType.Object(
        Attributes.Select(a => new KeyValuePair<string, CtyType>(a.Name, a.ImpliedType))
            .Concat(BlockTypes.Select(b => new KeyValuePair<string, CtyType>(b.TypeName, b.ImpliedType))));

    public TfAttribute? Find(string name) => Attributes.FirstOrDefault(a => a.Name == name);

    public Protocol.Tfplugin6.Schema.Types.Block ToProto()
    {
        var proto = new Protocol.Tfplugin6.Schema.Types.Block { Description = Description, DescriptionKind = StringKind.Markdown };
        proto.Attributes.AddRange(Attributes.Select(a => a.ToProto()));
        proto.BlockTypes.AddRange(BlockTypes.Select(b => b.ToProto()));
        return proto;
    }
}
