using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Pulumi.Schema;

/// <summary>
/// A Pulumi resource type: the model resource behind a token, plus what only Pulumi needs
/// (the <c>host</c> input, how ids look, which settings make a replacement collide).
/// </summary>
internal sealed class ResourceKind
{
    public const string HostField = "host";

    private ResourceKind(Type modelType, string idAttribute, IReadOnlyList<string[]> uniqueKeys,
        Func<object, object, IReadOnlyList<ValidationError>>? validateUpdate)
    {
        Schema = Schemas.Resource(modelType);
        ModelType = modelType;
        SpecType = modelType.BaseType!;
        IdAttribute = idAttribute;
        UniqueKeys = uniqueKeys;
        ValidateUpdateRule = validateUpdate;
        Model = Shape.Of(Schema.Object);
        Shape = Shape.ObjectOf([Host, .. Model.Fields], modelType);
    }

    /// <summary>Which agent of the provider's <c>hosts</c> map the resource lives on.</summary>
    public static Field Host { get; } = new(HostField, Shape.String,
        "Which agent of the provider's `hosts` map the resource lives on. Unset: the provider's `endpoint`. Changing it re-creates the resource.",
        UpdateKind.Replace);

    public ResourceSchema Schema { get; }

    public Type ModelType { get; }

    /// <summary>The user-settable record (<c>VmSpec</c> for <c>Vm</c>): what Check validates.</summary>
    public Type SpecType { get; }

    public string Token => Schema.PulumiToken;

    /// <summary>The model's attributes only.</summary>
    public Shape Model { get; }

    /// <summary>The model's attributes and <c>host</c>: the resource's properties on the wire.</summary>
    public Shape Shape { get; }

    /// <summary>The state attribute that is the Pulumi id.</summary>
    public string IdAttribute { get; }

    /// <summary>
    /// Settings (each group together) that no two resources on a host may share: a replacement
    /// that keeps them must delete the old resource first.
    /// </summary>
    public IReadOnlyList<string[]> UniqueKeys { get; }

    private Func<object, object, IReadOnlyList<ValidationError>>? ValidateUpdateRule { get; }

    /// <summary>Rules comparing an update with the previous inputs (things that only grow).</summary>
    public IReadOnlyList<ValidationError> ValidateUpdate(object before, object after) =>
        ValidateUpdateRule?.Invoke(before, after) ?? [];

    public static IReadOnlyList<ResourceKind> All { get; } =
    [
        new(typeof(Vm), "vm_id", [["name"], ["vm_id"]], (before, after) => ((VmSpec)after).ValidateUpdate((VmSpec)before)),
        new(typeof(Volume), "volume_id", [["name", "pool"]], (before, after) => ((VolumeSpec)after).ValidateUpdate((VolumeSpec)before)),
        new(typeof(Image), "image_id", [["name", "pool"]], null),
        new(typeof(StoragePool), "name", [["name"], ["path"], ["volume_group", "thin_pool"]], null),
        new(typeof(Network), "name", [["name"]], null),
        new(typeof(Snapshot), "snapshot_id", [["vm_id", "name"]], null),
    ];

    public static ResourceKind? ForToken(string token) => All.FirstOrDefault(k => k.Token == token);

    /// <summary>The kind from a URN's type segment (<c>urn:pulumi:stack::project::kvm:index/vm:Vm::web</c>).</summary>
    public static ResourceKind? ForUrn(string urn)
    {
        var parts = urn.Split("::");
        if (parts.Length < 4)
            return null;
        var type = parts[2];
        var nested = type.LastIndexOf('$');
        return ForToken(nested < 0 ? type : type[(nested + 1)..]);
    }
}

/// <summary>A Pulumi function (data source): a token, its arguments and the model record it returns.</summary>
internal sealed class FunctionKind
{
    private FunctionKind(Type modelType, string description, IReadOnlyList<Field> arguments)
    {
        Schema = Schemas.Resource(modelType);
        ModelType = modelType;
        Description = description;
        Arguments = Shape.ObjectOf(arguments);
        Result = Shape.ObjectOf([ResourceKind.Host, .. Shape.Of(Schema.Object).Fields], modelType);
    }

    public ResourceSchema Schema { get; }

    public Type ModelType { get; }

    public string Description { get; }

    public string Name => "get" + Schema.PascalName;

    public string Token => $"kvm:index/{Name}:{Name}";

    public Shape Arguments { get; }

    public Shape Result { get; }

    public static FunctionKind GetHost { get; } = new(typeof(HostInfo), Schemas.Resource<HostInfo>().Description,
        [ResourceKind.Host with { Description = "Which agent of the provider's `hosts` map to ask. Unset: the provider's `endpoint`.", Update = UpdateKind.Live }]);

    public static FunctionKind GetVm { get; } = new(typeof(Vm), "Reads an existing VM by its numeric VM ID.",
    [
        ResourceKind.Host with { Description = "Which agent of the provider's `hosts` map the VM lives on. Unset: the provider's `endpoint`.", Update = UpdateKind.Live },
        new Field("vm_id", Shape.Integer, "Numeric VM ID of the VM to read.", Required: true),
    ]);

    public static FunctionKind GetVmAddresses { get; } = new(typeof(VmAddresses), Schemas.Resource<VmAddresses>().Description,
    [
        ResourceKind.Host with { Description = "Which agent of the provider's `hosts` map the VM lives on. Unset: the provider's `endpoint`.", Update = UpdateKind.Live },
        new Field("vm_id", Shape.Integer, "Numeric VM ID of the VM whose addresses to read.", Required: true),
    ]);

    public static IReadOnlyList<FunctionKind> All { get; } = [GetHost, GetVm, GetVmAddresses];

    public static FunctionKind? ForToken(string token) => All.FirstOrDefault(f => f.Token == token);
}

/// <summary>The provider's own settings: stack config <c>kvm:*</c> and explicit provider inputs.</summary>
internal static class ProviderFields
{
    public const string EndpointEnvironment = "KVM_ENDPOINT";
    public const string TokenEnvironment = "KVM_TOKEN";

    public static Field Endpoint { get; } = new("endpoint", Shape.String,
        $"Base URL of the default host's kvm-agent, e.g. `http://127.0.0.1:8680`, or a local agent's socket, `unix:///run/kvm-agent/agent.sock`. Falls back to the `{EndpointEnvironment}` environment variable.");

    public static Field Token { get; } = new("token", Shape.String,
        $"Bearer token for the agents. Falls back to the `{TokenEnvironment}` environment variable.", Sensitive: true);

    public static Field Hosts { get; } = new("hosts", Shape.MapOf(Shape.String),
        "Further hosts by name, each the base URL of its kvm-agent; a resource's `host` picks one. All hosts share `token`.");

    public static Shape Shape { get; } = Shape.ObjectOf([Endpoint, Token, Hosts]);
}
