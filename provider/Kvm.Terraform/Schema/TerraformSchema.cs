using System.Globalization;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Terraform.Cty;
using NestingMode = Kvm.Protocol.Tfplugin6.Schema.Types.Object.Types.NestingMode;

namespace Kvm.Terraform.Schema;

/// <summary>A managed resource type as Terraform sees it, projected from one model record.</summary>
public sealed class TfResourceType
{
    public required string TypeName { get; init; }
    public required ResourceSchema Model { get; init; }
    public required TfBlock Block { get; init; }

    /// <summary>The model attribute whose value is the resource's id (and <c>id</c>'s value).</summary>
    public required string IdAttribute { get; init; }

    /// <summary>Agent-set attributes that keep their prior value through an update (the rest become unknown).</summary>
    public required IReadOnlySet<string> StableComputed { get; init; }

    /// <summary>Stable agent-set attributes that do change when one of these settings changes.</summary>
    public IReadOnlyDictionary<string, string[]> StableUnlessChanged { get; init; } = new Dictionary<string, string[]>();

    public bool HasTimeouts => Block.BlockTypes.Any(b => b.TypeName == TerraformSchema.Timeouts);

    public CtyType Type => Block.ImpliedType;

    public Protocol.Tfplugin6.Schema ToProto() => new() { Version = TerraformSchema.SchemaVersion, Block = Block.ToProto() };
}

/// <summary>A data source type.</summary>
public sealed class TfDataSourceType
{
    public required string TypeName { get; init; }
    public required ResourceSchema Model { get; init; }
    public required TfBlock Block { get; init; }

    public CtyType Type => Block.ImpliedType;

    public Protocol.Tfplugin6.Schema ToProto() => new() { Version = 0, Block = Block.ToProto() };
}

/// <summary>
/// The one projection of the model into Terraform schemas. Built lazily per type, because every
/// terraform command launches the provider several times and most launches touch one or two types.
/// </summary>
public static class TerraformSchema
{
    public const long SchemaVersion = 0;
    public const string Id = "id";
    public const string Host = "host";
    public const string Timeouts = "timeouts";

    private static readonly Dictionary<string, Func<TfResourceType>> ResourceFactories = new(StringComparer.Ordinal)
    {
        ["kvm_vm"] = () => Resource(typeof(Vm), "vm_id", ["serial_log", "mac_addresses", "accelerator"], timeouts: true,
            new Dictionary<string, string[]> { ["mac_addresses"] = ["network_interfaces", "vm_id"], ["accelerator"] = ["kvm", Host], ["serial_log"] = [Host] }),
        ["kvm_volume"] = () => Resource(typeof(Volume), "volume_id", ["volume_id", "path"], timeouts: false),
        ["kvm_image"] = () => Resource(typeof(Image), "image_id", ["image_id", "path", "format", "virtual_size_bytes", "size_bytes", "sha256"], timeouts: false),
        ["kvm_storage_pool"] = () => Resource(typeof(StoragePool), "name", ["builtin", "capacity_bytes", "host_path"], timeouts: false),
        ["kvm_network"] = () => Resource(typeof(Network), "name", ["owned"], timeouts: false),
        ["kvm_snapshot"] = () => Resource(typeof(Snapshot), "snapshot_id", ["snapshot_id", "created_at", "parent", "vm_status", "disks", "vm_state_bytes", "fs_frozen"], timeouts: false),
    };

    private static readonly Dictionary<string, Func<TfDataSourceType>> DataSourceFactories = new(StringComparer.Ordinal)
    {
        ["kvm_host"] = () => DataSource(typeof(HostInfo), []),
        ["kvm_vm"] = () => DataSource(typeof(Vm), ["vm_id", "name"]),
        ["kvm_vm_addresses"] = () => DataSource(typeof(VmAddresses), ["vm_id"]),
    };

    private static readonly Dictionary<string, Lazy<TfResourceType>> ResourceCache =
        ResourceFactories.ToDictionary(p => p.Key, p => new Lazy<TfResourceType>(p.Value), StringComparer.Ordinal);

    private static readonly Dictionary<string, Lazy<TfDataSourceType>> DataSourceCache =
        DataSourceFactories.ToDictionary(p => p.Key, p => new Lazy<TfDataSourceType>(p.Value), StringComparer.Ordinal);

    private static readonly Lazy<TfBlock> ProviderBlock = new(BuildProvider);

    public static IEnumerable<string> ResourceTypeNames => ResourceFactories.Keys;

    public static IEnumerable<string> DataSourceTypeNames => DataSourceFactories.Keys;

    public static TfBlock Provider => ProviderBlock.Value;

    public static TfResourceType? FindResource(string typeName) =>
        ResourceCache.TryGetValue(typeName, out var lazy) ? lazy.Value : null;

    public static TfDataSourceType? FindDataSource(string typeName) =>
        DataSourceCache.TryGetValue(typeName, out var lazy) ? lazy.Value : null;

    public static IEnumerable<TfResourceType> Resources => ResourceCache.Values.Select(l => l.Value);

    public static IEnumerable<TfDataSourceType> DataSources => DataSourceCache.Values.Select(l => l.Value);

    private static TfResourceType Resource(Type model, string idAttribute, string[] stableComputed, bool timeouts,
        Dictionary<string, string[]>? stableUnlessChanged = null)
    {
        var schema = Schemas.Resource(model);
        var liveWords = model == typeof(Vm) ? "apply live, while the VM runs" : "apply in place";
        var attributes = new List<TfAttribute>
        {
            new()
            {
                Name = Id, Type = CtyType.String, Presence = TfPresence.Computed,
                Description = $"Identifier of the {Words(schema.Name)}: its `{idAttribute}` as a string.",
            },
            new()
            {
                Name = Host, Type = CtyType.String, Presence = TfPresence.Optional,
                Description = "Which agent the " + Words(schema.Name) + " lives on: a key of the provider's `hosts` map. " +
                    "Default: the provider's `endpoint`. " + (model == typeof(Vm)
                        ? "Changing it replaces the VM, or migrates it when `migration.enabled` is true."
                        : "Changing it forces replacement."),
            },
        };
        attributes.AddRange(schema.Object.Attributes.Select(a => ResourceAttribute(a, liveWords)));
        var blocks = timeouts ? new[] { TimeoutsBlock() } : [];
        return new TfResourceType
        {
            TypeName = schema.TerraformName,
            Model = schema,
            IdAttribute = idAttribute,
            StableComputed = new HashSet<string>([Id, idAttribute, .. stableComputed], StringComparer.Ordinal),
            StableUnlessChanged = stableUnlessChanged ?? [],
            Block = new TfBlock { Attributes = attributes, BlockTypes = blocks, Description = schema.Description },
        };
    }

    private static TfAttribute ResourceAttribute(AttributeSchema a, string liveWords)
    {
        var s = a.Setting;
        var presence = s.ReadOnly ? TfPresence.Computed
            : s.Required ? TfPresence.Required
            : s.Computed ? TfPresence.OptionalComputed
            : TfPresence.Optional;
        var nested = NestedObject(a.Type, inner => ResourceAttribute(inner, liveWords));
        return new TfAttribute
        {
            Name = a.Name,
            Type = nested is null ? CtyTypeOf(a.Type) : null,
            Nested = nested,
            Presence = presence,
            Sensitive = s.Sensitive,
            Description = Describe(a, liveWords),
            Model = a,
        };
    }

    private static TfDataSourceType DataSource(Type model, string[] inputs)
    {
        var schema = Schemas.Resource(model);
        var attributes = new List<TfAttribute>
        {
            new()
            {
                Name = Id, Type = CtyType.String, Presence = TfPresence.Computed,
                Description = "Identifier of what was read.",
            },
            new()
            {
                Name = Host, Type = CtyType.String, Presence = TfPresence.Optional,
                Description = "Which agent to ask: a key of the provider's `hosts` map. Default: the provider's `endpoint`.",
            },
        };
        attributes.AddRange(schema.Object.Attributes.Select(a => DataSourceAttribute(a, inputs.Contains(a.Name), inputs.Length > 1)));
        var description = model == typeof(Vm)
            ? "Reads an existing VM, by `vm_id` or by `name`. " + schema.Description
            : schema.Description;
        return new TfDataSourceType
        {
            TypeName = schema.TerraformName,
            Model = schema,
            Block = new TfBlock { Attributes = attributes, Description = description },
        };
    }

    private static TfAttribute DataSourceAttribute(AttributeSchema a, bool input, bool otherKeys = false)
    {
        var nested = NestedObject(a.Type, inner => DataSourceAttribute(inner, false));
        var lookup = !input ? "" : otherKeys ? " Set it (or the other lookup key) to choose the VM." : " Set it to choose the VM.";
        return new TfAttribute
        {
            Name = a.Name,
            Type = nested is null ? CtyTypeOf(a.Type) : null,
            Nested = nested,
            Presence = input ? TfPresence.OptionalComputed : TfPresence.Computed,
            Sensitive = a.Setting.Sensitive,
            Description = a.Description + lookup,
            Model = a,
        };
    }

    private static TfObject? NestedObject(SchemaType type, Func<AttributeSchema, TfAttribute> project)
    {
        var (element, nesting) = type switch
        {
            { Kind: ValueKind.Object } => (type.Object, NestingMode.Single),
            { Kind: ValueKind.Map, Element.Kind: ValueKind.Object } => (type.Element.Object, NestingMode.Map),
            { Kind: ValueKind.List, Element.Kind: ValueKind.Object } => (type.Element.Object, NestingMode.List),
            { Kind: ValueKind.Set, Element.Kind: ValueKind.Object } => (type.Element.Object, NestingMode.Set),
            _ => (null, NestingMode.Invalid),
        };
        return element is null ? null : new TfObject { Attributes = [.. element.Attributes.Select(project)], Nesting = nesting };
    }

    /// <summary>The cty type of a model type; objects included (used for primitives and their collections).</summary>
    public static CtyType CtyTypeOf(SchemaType type) => type.Kind switch
    {
        ValueKind.String => CtyType.String,
        ValueKind.Integer or ValueKind.Number => CtyType.Number,
        ValueKind.Bool => CtyType.Bool,
        ValueKind.List => CtyType.List(CtyTypeOf(type.Element!)),
        ValueKind.Set => CtyType.Set(CtyTypeOf(type.Element!)),
        ValueKind.Map => CtyType.Map(CtyTypeOf(type.Element!)),
        ValueKind.Object => CtyType.Object(type.Object!.Attributes.Select(a => new KeyValuePair<string, CtyType>(a.Name, CtyTypeOf(a.Type)))),
        _ => throw new InvalidOperationException($"unsupported kind {type.Kind}"),
    };

    private static string Describe(AttributeSchema a, string liveWords)
    {
        var s = a.Setting;
        var text = a.Description.TrimEnd();
        if (s.ReadOnly)
            return text;
        var parts = new List<string> { text };
        if (s.Default is { } d)
            parts.Add($"Default: `{FormatDefault(d)}`.");
        else if (s.DefaultText is { } dt)
            parts.Add($"Default: {dt}.");
        var kind = a.Type.Kind;
        var isObjectMap = a.Type is { Kind: ValueKind.Map or ValueKind.List or ValueKind.Set, Element.Kind: ValueKind.Object };
        if (kind == ValueKind.Object)
            return string.Join(" ", parts);
        parts.Add((s.Update, isObjectMap) switch
        {
            (_, true) when s.Hotplug is { } entries => $"Adding or removing entries: changes {liveWords}, when `hotplug` has `{entries}`; otherwise they need a restart of the VM (see `update_policy`).",
            (UpdateKind.Live, false) when s.Hotplug is { } hotplug => $"Changes {liveWords}, when `hotplug` has `{hotplug}`; otherwise they need a restart of the VM (see `update_policy`).",
            (UpdateKind.Replace, _) => "Changing it forces replacement.",
            (UpdateKind.Live, true) => $"Adding or removing entries: changes {liveWords}.",
            (UpdateKind.Live, false) => $"Changes {liveWords}.",
            (UpdateKind.Restart, true) => "Adding or removing entries needs a restart of the VM (see `update_policy`).",
            _ => "Changes need a restart of the VM (see `update_policy`).",
        });
        return string.Join(" ", parts);
    }

    private static string FormatDefault(object value) => value switch
    {
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Words(string snake) => snake.Replace('_', ' ');

    private static TfNestedBlock TimeoutsBlock() => new()
    {
        TypeName = Timeouts,
        Block = new TfBlock
        {
            Description = "Bounds on how long each operation may take, as durations such as `30s`, `10m` or `1h30m`.",
            Attributes =
            [
                Duration("create", "20m"),
                Duration("update", "20m"),
                Duration("delete", "10m"),
            ],
        },
    };

    private static TfAttribute Duration(string name, string @default) => new()
    {
        Name = name,
        Type = CtyType.String,
        Presence = TfPresence.Optional,
        Description = $"How long {name} may take. Default: `{@default}`.",
    };

    private static TfBlock BuildProvider() => new()
    {
        Description = "Manages QEMU/KVM virtual machines, volumes, storage pools and bridges through `kvm-agent` on each host.",
        Attributes =
        [
            new()
            {
                Name = "endpoint", Type = CtyType.String, Presence = TfPresence.Optional,
                Description = "Base URL of the default host's agent, e.g. `http://127.0.0.1:8680`, or a local agent's socket, `unix:///run/kvm-agent/agent.sock`. Default: the `KVM_ENDPOINT` environment variable.",
            },
            new()
            {
                Name = "token", Type = CtyType.String, Presence = TfPresence.Optional, Sensitive = true,
                Description = "Bearer token of the agents. Default: the `KVM_TOKEN` environment variable.",
            },
            new()
            {
                Name = "ca_cert_pem", Type = CtyType.String, Presence = TfPresence.Optional,
                Description = "PEM certificate(s) of the CA that signed the agents' TLS certificates, for `https` endpoints with a private CA.",
            },
            new()
            {
                Name = "insecure", Type = CtyType.Bool, Presence = TfPresence.Optional,
                Description = "Skip TLS certificate verification of `https` endpoints (tests only). Default: `false`.",
            },
            new()
            {
                Name = "hosts", Type = CtyType.Map(CtyType.String), Presence = TfPresence.Optional,
                Description = "Further agents by name, e.g. `{ lab2 = \"http://10.0.0.2:8680\" }`. A resource's `host` picks one; they share `token` and TLS settings.",
            },
        ],
    };
}
