using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Model.Schema;

namespace Kvm.Pulumi.Schema;

/// <summary>
/// Projects the model onto a Pulumi package schema (<c>schema.json</c>), from which
/// <c>pulumi package gen-sdk</c> makes the SDKs. Nothing here is written by hand per resource:
/// a new model attribute shows up in every SDK after regenerating.
/// </summary>
public static class PulumiSchema
{
    public const string PackageName = "kvm";

    /// <summary>The plugin version (Major.Minor.Patch, no build metadata).</summary>
    public static string Version { get; } = ReadVersion();

    /// <summary>The package schema, indented, with a trailing newline (the committed file's exact text).</summary>
    public static string BuildText() =>
        Build().ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";

    /// <summary>The package schema.</summary>
    public static JsonObject Build()
    {
        var types = new TypeNames();
        var resources = new JsonObject();
        foreach (var kind in ResourceKind.All)
            resources[kind.Token] = Resource(kind, types);
        var functions = new JsonObject();
        foreach (var function in FunctionKind.All)
            functions[function.Token] = Function(function, types);

        var providerProperties = Properties(ProviderFields.Shape, types, inputs: true, withEnvironment: true);
        return new JsonObject
        {
            ["name"] = PackageName,
            ["displayName"] = "KVM",
            ["version"] = Version,
            ["description"] = "QEMU/KVM virtual machines, volumes, storage pools and bridges on Linux hosts, managed through kvm-agent.",
            ["keywords"] = new JsonArray("pulumi", "kvm", "qemu", "category/infrastructure", "kind/native"),
            ["meta"] = new JsonObject
            {
                // Tokens are kvm:index/vm:Vm; the last segment is the file, not a module.
                ["moduleFormat"] = "(.*)(?:/[^/]*)",
            },
            ["language"] = new JsonObject
            {
                ["csharp"] = new JsonObject
                {
                    ["rootNamespace"] = "Pulumi",
                    ["namespaces"] = new JsonObject { [PackageName] = "Kvm" },
                    ["respectSchemaVersion"] = true,
                },
            },
            ["config"] = new JsonObject
            {
                ["variables"] = Properties(ProviderFields.Shape, types, inputs: true, withEnvironment: true),
            },
            ["provider"] = new JsonObject
            {
                ["description"] = "The provider type for the kvm package: which kvm-agents to talk to, and with what token.",
                ["inputProperties"] = providerProperties,
                ["properties"] = Properties(ProviderFields.Shape, types, inputs: false, withEnvironment: false),
            },
            ["resources"] = resources,
            ["functions"] = functions,
            ["types"] = types.Build(),
        };
    }

    private static JsonObject Resource(ResourceKind kind, TypeNames types)
    {
        var prefix = kind.Schema.PascalName;
        var inputs = kind.Shape.Fields.Where(f => f.IsInput).ToList();
        return new JsonObject
        {
            ["description"] = kind.Schema.Description,
            ["inputProperties"] = Properties(inputs, prefix, types, inputs: true),
            ["requiredInputs"] = Names(inputs.Where(f => f.Required)),
            ["properties"] = Properties(kind.Shape.Fields, prefix, types, inputs: false),
            ["required"] = Names(kind.Shape.Fields.Where(AlwaysInState)),
        };
    }

    private static JsonObject Function(FunctionKind function, TypeNames types)
    {
        var prefix = function.Schema.PascalName;
        return new JsonObject
        {
            ["description"] = function.Description,
            ["inputs"] = new JsonObject
            {
                ["type"] = "object",
                ["properties"] = Properties(function.Arguments.Fields, prefix, types, inputs: true),
                ["required"] = Names(function.Arguments.Fields.Where(f => f.Required)),
            },
            ["outputs"] = new JsonObject
            {
                ["type"] = "object",
                ["properties"] = Properties(function.Result.Fields, prefix, types, inputs: false),
                ["required"] = Names(function.Result.Fields.Where(AlwaysInState)),
            },
        };
    }

    // Required inputs come back as set; computed ones (vm_id) are filled by the agent.
    private static bool AlwaysInState(Field field) => field.Required || (field.Computed && !field.ReadOnly);

    private static JsonArray Names(IEnumerable<Field> fields) => new([.. fields.Select(f => (JsonNode)f.WireName)]);

    private static JsonObject Properties(Shape shape, TypeNames types, bool inputs, bool withEnvironment)
    {
        var result = Properties(shape.Fields, "Provider", types, inputs);
        if (withEnvironment)
        {
            SetEnvironment(result, ProviderFields.Endpoint, ProviderFields.EndpointEnvironment);
            SetEnvironment(result, ProviderFields.Token, ProviderFields.TokenEnvironment);
        }
        return result;

        static void SetEnvironment(JsonObject properties, Field field, string variable) =>
            ((JsonObject)properties[field.WireName]!)["defaultInfo"] = new JsonObject { ["environment"] = new JsonArray(variable) };
    }

    private static JsonObject Properties(IEnumerable<Field> fields, string typePrefix, TypeNames types, bool inputs)
    {
        var result = new JsonObject();
        foreach (var field in fields)
        {
            var spec = TypeSpec(field.Shape, typePrefix + Naming.ToPascal(field.Name), field.Description, types);
            if (field.Wide && field.Shape.Kind == ValueKind.Integer)
                spec["type"] = "number";
            spec["description"] = Describe(field);
            if (field.Sensitive)
                spec["secret"] = true;
            if (inputs && field.IsInput && field.Update == UpdateKind.Replace)
                spec["replaceOnChanges"] = true;
            if (!inputs && field.IsInput && field.Update == UpdateKind.Replace)
                spec["willReplaceOnChanges"] = true;
            result[field.WireName] = spec;
        }
        return result;
    }

    private static JsonObject TypeSpec(Shape shape, string typeName, string description, TypeNames types) => shape.Kind switch
    {
        ValueKind.String => new JsonObject { ["type"] = "string" },
        ValueKind.Integer => new JsonObject { ["type"] = "integer" },
        ValueKind.Number => new JsonObject { ["type"] = "number" },
        ValueKind.Bool => new JsonObject { ["type"] = "boolean" },
        ValueKind.List or ValueKind.Set => new JsonObject { ["type"] = "array", ["items"] = TypeSpec(shape.Element!, Singular(typeName), ElementOf(description), types) },
        ValueKind.Map => new JsonObject { ["type"] = "object", ["additionalProperties"] = TypeSpec(shape.Element!, Singular(typeName), ElementOf(description), types) },
        _ => new JsonObject { ["$ref"] = "#/types/" + types.TokenFor(shape, typeName, description) },
    };

    private static string ElementOf(string description) => "One entry of: " + description;

    /// <summary>Description with the documented default, since SDKs must not send defaults (state keeps what the user set).</summary>
    internal static string Describe(Field field)
    {
        var text = field.Description.TrimEnd();
        if (field.Default is { } value)
            text += $" Default: `{FormatDefault(value)}`.";
        else if (field.DefaultText is { } words)
            text += $" Default: {words}.";
        return text;
    }

    private static string FormatDefault(object value) => value switch
    {
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary><c>Disks</c> → <c>Disk</c>, <c>NetworkInterfaces</c> → <c>NetworkInterface</c>: an element is one of them.</summary>
    internal static string Singular(string name)
    {
        if (name.EndsWith("ies", StringComparison.Ordinal))
            return name[..^3] + "y";
        if (name.EndsWith('s') && !name.EndsWith("ss", StringComparison.Ordinal))
            return name[..^1];
        return name;
    }

    private static string ReadVersion()
    {
        var informational = typeof(PulumiSchema).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var plus = informational.IndexOf('+', StringComparison.Ordinal);
        return plus < 0 ? informational : informational[..plus];
    }

    /// <summary>Names each nested record once, after the first place it appears (<c>kvm:index/VmCpu:VmCpu</c>).</summary>
    private sealed class TypeNames
    {
        private readonly Dictionary<Shape, string> _tokens = [];
        private readonly SortedDictionary<string, JsonObject> _specs = new(StringComparer.Ordinal);

        public string TokenFor(Shape shape, string name, string description)
        {
            if (_tokens.TryGetValue(shape, out var token))
                return token;
            token = $"{PackageName}:index/{name}:{name}";
            if (_specs.ContainsKey(token))
                throw new InvalidOperationException($"Two different records would both be named {name} in the Pulumi schema.");
            _tokens[shape] = token;
            var spec = new JsonObject { ["type"] = "object" };
            _specs[token] = spec;
            spec["description"] = description;
            spec["properties"] = Properties(shape.Fields, name, this, inputs: true);
            if (shape.Fields.Any(f => f.Required))
                spec["required"] = Names(shape.Fields.Where(f => f.Required));
            return token;
        }

        public JsonObject Build()
        {
            var result = new JsonObject();
            foreach (var (token, spec) in _specs)
                result[token] = spec;
            return result;
        }
    }
}
