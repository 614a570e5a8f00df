using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;
using Kvm.Pulumi.Schema;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Provider;

/// <summary>How a property differs, in Pulumi's terms.</summary>
internal enum ChangeKind
{
    Add,
    Delete,
    Update,
}

/// <summary>One changed property: where, what the engine should show, and how it applies.</summary>
internal sealed record PropertyChange(AttrPath Path, ChangeKind Change, UpdateKind Update)
{
    public bool Replaces => Update == UpdateKind.Replace;
}

/// <summary>The outcome of comparing a resource's state with new inputs.</summary>
internal sealed record DiffOutcome(IReadOnlyList<PropertyChange> Changes, bool DeleteBeforeReplace)
{
    public IEnumerable<string> Replaces => Changes.Where(c => c.Replaces).Select(c => JsonPaths.TopLevel(c.Path)).Distinct();

    public IEnumerable<string> Diffs => Changes.Select(c => JsonPaths.TopLevel(c.Path)).Distinct();

    /// <summary>The outcome without changes under the resource's <c>ignoreChanges</c> paths.</summary>
    public DiffOutcome Ignoring(IgnoredPaths ignored)
    {
        if (ignored.IsEmpty)
            return this;
        var kept = Changes.Where(c => !ignored.Covers(c.Path)).ToList();
        return new DiffOutcome(kept, DeleteBeforeReplace && kept.Any(c => c.Replaces));
    }
}

/// <summary>
/// The Pulumi semantics of a resource, free of the wire and the agent: what Check accepts, what
/// Diff reports, what a preview shows and which inputs a read implies.
/// </summary>
internal static class ResourceLogic
{
    /// <summary>
    /// Validation problems of new inputs: the codec's type problems, the model's declarative and
    /// cross-field rules (the agent's own), update rules against the previous inputs, and whether
    /// <c>host</c> names a configured host. Rules that touch unknown values wait for the real values.
    /// </summary>
    public static IReadOnlyList<PropertyProblem> Check(ResourceKind kind, DecodedProperties news, DecodedProperties? olds, ProviderSettings? settings)
    {
        var problems = new List<PropertyProblem>(news.Problems);
        var known = news.Known();
        var host = TakeHost(known);
        if (host is not null && settings is not null && !settings.Knows(host))
            problems.Add(new PropertyProblem(AttrPath.Root.Attr(ResourceKind.HostField), settings.UnknownHostMessage(host)));

        object spec;
        try
        {
            spec = JsonSerializer.Deserialize(known, kind.SpecType, ModelJson.Options)!;
        }
        catch (JsonException e)
        {
            problems.Add(new PropertyProblem(AttrPath.Root, e.Message));
            return problems;
        }
        var errors = new List<ValidationError>(Validator.Validate(spec));
        if (olds is not null && olds.Value.Count > 0 && TryDeserialize(olds.Known(), kind.SpecType) is { } before)
            errors.AddRange(kind.ValidateUpdate(before, spec));
        foreach (var error in errors)
        {
            var path = AttrPath.Parse(error.Attribute);
            if (!DependsOnUnknown(path, news))
                problems.Add(new PropertyProblem(path, error.Detail));
        }
        return problems;
    }

    // An error at or inside an unknown value, or beside one in the same nested object (cross-field
    // rules such as "size_gib or volume_id"), may vanish once the value is known.
    private static bool DependsOnUnknown(AttrPath path, DecodedProperties news) =>
        news.Unknowns.Any(unknown =>
            JsonPaths.StartsWith(path, unknown)
            || JsonPaths.StartsWith(unknown, path)
            || (unknown.Steps.Count > 1 && JsonPaths.StartsWith(path, JsonPaths.Parent(unknown))));

    /// <summary>
    /// Compares the resource's state (what the agent last reported, so drift shows too) with new
    /// inputs, classifying every change with the model's update kinds.
    /// </summary>
    public static DiffOutcome Diff(ResourceKind kind, JsonObject oldState, DecodedProperties news)
    {
        var oldSpec = InputsOf(kind, oldState);
        var oldHost = TakeHost(oldSpec);
        var newSpec = (JsonObject)news.Value.DeepClone();
        var newHost = TakeHost(newSpec);

        var comparable = news.Known();
        TakeHost(comparable);
        CarryComputed(kind.Model, oldSpec, comparable);

        var changes = new Dictionary<AttrPath, PropertyChange>();
        void Add(AttrPath path, UpdateKind update)
        {
            var change = new PropertyChange(path, KindOf(JsonPaths.Get(oldSpec, path), JsonPaths.Get(newSpec, path)), update);
            if (!changes.TryGetValue(path, out var existing) || existing.Update < update)
                changes[path] = change;
        }

        var before = Deserialize(oldSpec, kind.ModelType);
        var after = Deserialize(comparable, kind.ModelType);
        foreach (var change in Changes.Classify(before, after))
            Add(AttrPath.Parse(change.Attribute), change.Kind);

        foreach (var unknown in news.Unknowns)
        {
            if (unknown.Steps[0].Name == ResourceKind.HostField)
                continue;
            var field = kind.Model.FieldAt(unknown);
            var element = unknown.Steps[^1].Kind != PathStepKind.Attribute;
            var update = field is null ? UpdateKind.Replace
                : element ? field.Shape.Element!.WorstUpdate(field.Update)
                : field.Shape.WorstUpdate(field.Update);
            Add(unknown, update);
        }

        var hostPath = AttrPath.Root.Attr(ResourceKind.HostField);
        var hostUnknown = news.Unknowns.Contains(hostPath);
        if (hostUnknown || oldHost != newHost)
            changes[hostPath] = new PropertyChange(hostPath, KindOf(oldHost, newHost), !hostUnknown && Migrates(kind, news) ? UpdateKind.Live : UpdateKind.Replace);

        var ordered = changes.Values.OrderBy(c => c.Path.ToString(), StringComparer.Ordinal).ToList();
        var replace = ordered.Any(c => c.Replaces);
        var deleteFirst = replace && !hostUnknown && oldHost == newHost && WouldCollide(kind, oldSpec, news);
        return new DiffOutcome(ordered, deleteFirst);
    }

    /// <summary>A VM whose new inputs say <c>migration.enabled = true</c> (known): a host change migrates it in place.</summary>
    private static bool Migrates(ResourceKind kind, DecodedProperties news)
    {
        var enabled = AttrPath.Root.Attr("migration").Attr("enabled");
        return kind.ModelType == typeof(Vm) && !news.IsUnknownAt(enabled) && !news.IsUnknownAt(AttrPath.Root.Attr("migration"))
            && JsonPaths.Get(news.Value, enabled) is JsonValue value && value.TryGetValue<bool>(out var on) && on;
    }

    // The replacement is created while the old resource still exists (Pulumi's default order), so a
    // name or id the user kept would be taken: the old one has to go first.
    private static bool WouldCollide(ResourceKind kind, JsonObject oldSpec, DecodedProperties news) =>
        kind.UniqueKeys.Any(key =>
            news.Value[key[0]] is not null
            && key.All(name => !news.IsUnknownAt(AttrPath.Root.Attr(name)) && JsonNode.DeepEquals(oldSpec[name], news.Value[name])));

    private static ChangeKind KindOf(object? before, object? after) => (before, after) switch
    {
        (null, not null) => ChangeKind.Add,
        (not null, null) => ChangeKind.Delete,
        _ => ChangeKind.Update,
    };

    /// <summary>
    /// What a preview of a create shows: the inputs, and every value the agent will fill in
    /// (reported attributes, computed ones left unset) as unknown.
    /// </summary>
    public static JsonObject PreviewOfCreate(ResourceKind kind, DecodedProperties news)
    {
        var outputs = (JsonObject)news.Value.DeepClone();
        foreach (var field in kind.Shape.Fields)
        {
            if ((field.ReadOnly || field.Computed) && outputs[field.Name] is null)
                outputs[field.Name] = Sentinels.Unknown;
        }
        return outputs;
    }

    /// <summary>What a preview of an update shows: the new inputs, with reported and computed values as they were.</summary>
    public static JsonObject PreviewOfUpdate(ResourceKind kind, JsonObject oldState, DecodedProperties news)
    {
        var outputs = (JsonObject)news.Value.DeepClone();
        foreach (var field in kind.Shape.Fields)
        {
            if ((field.ReadOnly || field.Computed) && outputs[field.Name] is null && oldState[field.Name] is { } old)
                outputs[field.Name] = old.DeepClone();
        }
        return outputs;
    }

    /// <summary>
    /// The inputs a read-back state implies: every user-settable value the agent reported. On
    /// refresh, computed values the user never set stay out, so the program still matches them.
    /// </summary>
    public static JsonObject InputsFromState(ResourceKind kind, JsonObject state, JsonObject? previousInputs)
    {
        var inputs = new JsonObject();
        foreach (var field in kind.Shape.Fields.Where(f => f.IsInput))
        {
            if (state[field.Name] is not { } value)
                continue;
            if (field.Computed && previousInputs is not null && previousInputs[field.Name] is null)
                continue;
            inputs[field.Name] = value.DeepClone();
        }
        return inputs;
    }

    /// <summary>The user-settable part of a state, <c>host</c> included.</summary>
    public static JsonObject InputsOf(ResourceKind kind, JsonObject state) => InputsFromState(kind, state, previousInputs: null);

    /// <summary>Removes and returns <c>host</c>: the agent's model has no such setting.</summary>
    public static string? TakeHost(JsonObject properties)
    {
        var host = properties[ResourceKind.HostField];
        properties.Remove(ResourceKind.HostField);
        return host is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
    }

    /// <summary>State as the plugin stores it: what the agent returned, plus the host it lives on.</summary>
    public static JsonObject WithHost(JsonObject state, string? host)
    {
        var result = new JsonObject();
        if (!string.IsNullOrEmpty(host))
            result[ResourceKind.HostField] = host;
        foreach (var (name, value) in state)
        {
            if (name != ResourceKind.HostField)
                result[name] = value?.DeepClone();
        }
        return result;
    }

    /// <summary>
    /// Splits an import id: <c>lab-01/101</c> is VM 101 on host lab-01. Volume ids contain one
    /// slash themselves (<c>pool/name</c>), and so do image ids, so only a further one names a host.
    /// </summary>
    public static (string? Host, string Id) SplitImportId(ResourceKind kind, string id)
    {
        var ownSlashes = kind.IdAttribute is "volume_id" or "image_id" or "snapshot_id" ? 1 : 0;
        var slash = id.IndexOf('/', StringComparison.Ordinal);
        return id.Count(c => c == '/') > ownSlashes && slash > 0 ? (id[..slash], id[(slash + 1)..]) : (null, id);
    }

    // Settings the agent fills when the user leaves them unset (vm_id) keep their value: an unset
    // input means "whatever it is", not "remove it".
    private static void CarryComputed(Shape shape, JsonObject? before, JsonObject? after)
    {
        if (before is null || after is null)
            return;
        foreach (var field in shape.Fields.Where(f => f.IsInput))
        {
            if (field.Computed && after[field.Name] is null && before[field.Name] is { } old)
            {
                after[field.Name] = old.DeepClone();
                continue;
            }
            if (field.Shape.Kind == ValueKind.Object)
            {
                CarryComputed(field.Shape, before[field.Name] as JsonObject, after[field.Name] as JsonObject);
            }
            else if (field.Shape is { Kind: ValueKind.Map, Element.Kind: ValueKind.Object } && before[field.Name] is JsonObject oldMap && after[field.Name] is JsonObject newMap)
            {
                foreach (var (key, element) in newMap)
                    CarryComputed(field.Shape.Element, oldMap[key] as JsonObject, element as JsonObject);
            }
        }
    }

    private static object Deserialize(JsonObject value, Type type) =>
        JsonSerializer.Deserialize(value, type, ModelJson.Options) ?? throw new JsonException($"empty {type.Name}");

    private static object? TryDeserialize(JsonObject value, Type type)
    {
        TakeHost(value);
        try
        {
            return JsonSerializer.Deserialize(value, type, ModelJson.Options);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
