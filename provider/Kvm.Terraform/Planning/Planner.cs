using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Client;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Schema;
using Kvm.Terraform.Values;

namespace Kvm.Terraform.Planning;

/// <summary>The answer to PlanResourceChange.</summary>
public sealed record PlanOutcome(CtyValue Planned, IReadOnlyList<AttrPath> RequiresReplace, IReadOnlyList<Diagnostic> Diagnostics);

/// <summary>
/// PlanResourceChange as a pure function. The rules that keep Terraform from reporting an
/// inconsistent plan or result: config values are planned as given (null stays null), agent-set
/// values are unknown unless they provably keep their prior value, and an unchanged configuration
/// plans the prior state exactly.
/// </summary>
public static class Planner
{
    public static PlanOutcome Plan(TfResourceType resource, IResourceOperations operations, CtyValue prior, CtyValue proposed, CtyValue config)
    {
        if (proposed.IsNull || config.IsNull)
            return new PlanOutcome(CtyValue.Null(resource.Type), [], []);
        var diagnostics = new List<Diagnostic>(ConfigValidation.Validate(resource.Block.Attributes, operations, config));
        if (prior.IsNull)
            return new PlanOutcome(PlanCreate(resource.Block, config), [], diagnostics);

        if (SameConfiguration(resource.Block, config, prior))
            return new PlanOutcome(prior, [], diagnostics);

        var planned = PlanUpdate(resource, config, prior);
        var replace = new List<AttrPath>();
        if (!Equals(ModelValues.StringAttr(prior, TerraformSchema.Host), ModelValues.StringAttr(planned, TerraformSchema.Host)))
        {
            if (MigrationPlan.Moves(resource, operations, planned))
                diagnostics.AddRange(MigrationPlan.Diagnostics(resource, prior, planned));
            else
                replace.Add(AttrPath.Root.Attr(TerraformSchema.Host));
        }

        var priorJson = ModelValues.ToModelJson(prior, resource.Block.Attributes).Json;
        var plannedModel = ModelValues.ToModelJson(planned, resource.Block.Attributes);
        var changes = Classify(resource, priorJson, plannedModel.Json);
        replace.AddRange(changes.Where(c => c.Kind == UpdateKind.Replace).Select(c => AttrPath.Parse(c.Attribute)));

        if (resource.Model.Object.ClrType == typeof(Vm))
            diagnostics.AddRange(RestartWarnings(prior, planned, changes));
        if (ModelValues.ToModelJson(config, resource.Block.Attributes).IsWhollyKnown)
            diagnostics.AddRange(operations.ValidateUpdate(priorJson, ModelValues.ToSpecJson(planned, resource.Block.Attributes)).Select(Diagnostics.FromValidation));
        return new PlanOutcome(planned, replace, diagnostics);
    }

    /// <summary>Create: the configuration, with every agent-set value unknown.</summary>
    public static CtyValue PlanCreate(TfBlock block, CtyValue config)
    {
        var values = new List<KeyValuePair<string, CtyValue>>();
        foreach (var attribute in block.Attributes)
        {
            var c = config.GetAttr(attribute.Name);
            var v = attribute.Presence switch
            {
                TfPresence.Computed => CtyValue.Unknown(attribute.ImpliedType),
                TfPresence.OptionalComputed when c.IsNull => CtyValue.Unknown(attribute.ImpliedType),
                _ => attribute.Nested is { } nested ? PlanNestedCreate(nested, c) : c,
            };
            values.Add(new(attribute.Name, v));
        }
        foreach (var nested in block.BlockTypes)
            values.Add(new(nested.TypeName, config.GetAttr(nested.TypeName)));
        return CtyValue.Object(block.ImpliedType, values);
    }

    private static CtyValue PlanNestedCreate(TfObject nested, CtyValue config)
    {
        if (!config.IsKnown || config.IsNull || !nested.Attributes.Any(a => a.IsComputed || a.Nested is not null))
            return config;
        return config.Type.Kind switch
        {
            CtyKind.Object => PlanObjectCreate(nested, config),
            CtyKind.Map => CtyValue.Map(nested.ObjectType, config.Entries.Select(e =>
                new KeyValuePair<string, CtyValue>(e.Key, e.Value.IsKnown && !e.Value.IsNull ? PlanObjectCreate(nested, e.Value) : e.Value))),
            _ => config,
        };
    }

    private static CtyValue PlanObjectCreate(TfObject nested, CtyValue config) =>
        CtyValue.Object(nested.ObjectType, nested.Attributes.Select(a =>
        {
            var c = config.GetAttr(a.Name);
            var v = a.Presence switch
            {
                TfPresence.Computed => CtyValue.Unknown(a.ImpliedType),
                TfPresence.OptionalComputed when c.IsNull => CtyValue.Unknown(a.ImpliedType),
                _ => a.Nested is { } n ? PlanNestedCreate(n, c) : c,
            };
            return new KeyValuePair<string, CtyValue>(a.Name, v);
        }));

    /// <summary>
    /// True when every user-settable value in <paramref name="config"/> equals the prior state's
    /// (sets unordered, numbers exact); agent-set values do not count, nor optional+computed ones left unset.
    /// </summary>
    public static bool SameConfiguration(TfBlock block, CtyValue config, CtyValue prior)
    {
        foreach (var attribute in block.Attributes)
        {
            if (attribute.Presence == TfPresence.Computed)
                continue;
            var c = config.GetAttr(attribute.Name);
            if (attribute.Presence == TfPresence.OptionalComputed && c.IsNull)
                continue;
            if (!c.Equals(prior.GetAttr(attribute.Name)))
                return false;
        }
        foreach (var nested in block.BlockTypes)
        {
            if (!config.GetAttr(nested.TypeName).Equals(prior.GetAttr(nested.TypeName)))
                return false;
        }
        return true;
    }

    /// <summary>Update: the configuration, prior values for agent-set values that cannot change, unknown for the rest.</summary>
    public static CtyValue PlanUpdate(TfResourceType resource, CtyValue config, CtyValue prior)
    {
        var block = resource.Block;
        var values = new List<KeyValuePair<string, CtyValue>>();
        foreach (var attribute in block.Attributes)
        {
            var c = config.GetAttr(attribute.Name);
            var p = prior.GetAttr(attribute.Name);
            var v = attribute.Presence switch
            {
                TfPresence.Computed => StaysAfterUpdate(resource, attribute.Name, config, prior) ? p : CtyValue.Unknown(attribute.ImpliedType),
                TfPresence.OptionalComputed when c.IsNull => p,
                _ => c,
            };
            values.Add(new(attribute.Name, v));
        }
        foreach (var nested in block.BlockTypes)
            values.Add(new(nested.TypeName, config.GetAttr(nested.TypeName)));
        return CtyValue.Object(block.ImpliedType, values);
    }

    private static bool StaysAfterUpdate(TfResourceType resource, string name, CtyValue config, CtyValue prior)
    {
        if (!resource.StableComputed.Contains(name))
            return false;
        if (!resource.StableUnlessChanged.TryGetValue(name, out var dependencies))
            return true;
        foreach (var dependency in dependencies)
        {
            var c = config.GetAttr(dependency);
            var attribute = resource.Block.Find(dependency)!;
            if (attribute.Presence == TfPresence.OptionalComputed && c.IsNull)
                continue;
            if (!c.Equals(prior.GetAttr(dependency)))
                return false;
        }
        return true;
    }

    /// <summary>The model's classification of the change between two model JSON values; empty when either does not parse.</summary>
    public static IReadOnlyList<SettingChange> Classify(TfResourceType resource, JsonObject before, JsonObject after)
    {
        var type = resource.Model.Object.ClrType;
        try
        {
            var a = before.Deserialize(type, LenientModelJson);
            var b = after.Deserialize(type, LenientModelJson);
            return a is null || b is null ? [] : Changes.Classify(a, b);
        }
        catch (JsonException)
        {
            return [];
        }
    }

    private static readonly JsonSerializerOptions LenientModelJson =
        new(ModelJson.Options) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Skip };

    /// <summary>A warning when a running VM gets settings that only apply at its next start.</summary>
    public static IEnumerable<Diagnostic> RestartWarnings(CtyValue prior, CtyValue planned, IReadOnlyList<SettingChange> changes)
    {
        var restart = changes.Where(c => c.Kind == UpdateKind.Restart).Select(c => c.Attribute).ToList();
        var status = ModelValues.StringAttr(prior, "status");
        if (restart.Count == 0 || status is not ("running" or "paused"))
            yield break;
        var policy = planned.GetAttr("update_policy");
        var mode = policy.IsKnown && !policy.IsNull ? ModelValues.StringAttr(policy, "restart") ?? "auto" : "auto";
        var timeoutValue = policy.IsKnown && !policy.IsNull ? policy.GetAttr("shutdown_timeout_seconds") : CtyValue.Null(CtyType.Number);
        var timeout = timeoutValue.IsKnown && !timeoutValue.IsNull ? timeoutValue.AsNumber().ToString() : "120";
        var what = mode switch
        {
            "never" => "update_policy.restart is \"never\": apply stores them and they take effect at the VM's next start; until then they are listed in pending_changes.",
            "fail" => "update_policy.restart is \"fail\": apply will fail without changing anything. Stop the VM first, or set update_policy.restart to \"auto\" or \"never\".",
            _ => $"update_policy.restart is \"auto\": apply shuts the VM down (gracefully, up to {timeout} s, then by force) and starts it again.",
        };
        var list = string.Join(", ", restart);
        yield return Diagnostics.Warning(
            "Changes need a restart of the VM",
            $"The VM is {status} and these settings only apply when it starts: {list}. {what}",
            AttrPath.Parse(restart[0]));
    }
}

/// <summary>Validation of a configuration that may hold unknown values.</summary>
public static class ConfigValidation
{
    /// <summary>
    /// The model's errors for <paramref name="config"/>. Unknown values are left out, and an error is
    /// dropped when it sits at or under an unknown value or next to one in the same object (a
    /// cross-field rule may depend on it): the final plan, with everything known, checks again.
    /// </summary>
    public static IReadOnlyList<Diagnostic> Validate(IReadOnlyList<TfAttribute> attributes, IResourceOperations operations, CtyValue config)
    {
        if (config.IsNull || !config.IsKnown)
            return [];
        var model = ModelValues.ToModelJson(config, attributes);
        var errors = operations.Validate(model.Json);
        return [.. Filter(errors, model.UnknownPaths).Select(Diagnostics.FromValidation)];
    }

    public static IEnumerable<ValidationError> Filter(IEnumerable<ValidationError> errors, IReadOnlyList<AttrPath> unknown)
    {
        if (unknown.Count == 0)
            return errors;
        var unknownScopes = unknown.Select(Enclosing).ToHashSet();
        return errors.Where(e =>
        {
            var path = e.Attribute.Length == 0 ? AttrPath.Root : AttrPath.Parse(e.Attribute);
            return !unknown.Any(u => IsPrefix(u, path)) && !unknownScopes.Contains(Enclosing(path));
        });
    }

    private static bool IsPrefix(AttrPath prefix, AttrPath path) =>
        prefix.Steps.Count <= path.Steps.Count && prefix.Steps.SequenceEqual(path.Steps.Take(prefix.Steps.Count));

    // The object that holds the attribute a path ends in (disks["a"].cache → disks["a"]; boot_order[1] → root).
    private static AttrPath Enclosing(AttrPath path)
    {
        var steps = path.Steps.ToList();
        while (steps.Count > 0)
        {
            var last = steps[^1];
            steps.RemoveAt(steps.Count - 1);
            if (last.Kind == PathStepKind.Attribute)
                break;
        }
        var result = AttrPath.Root;
        foreach (var step in steps)
        {
            result = step.Kind switch
            {
                PathStepKind.Attribute => result.Attr(step.Name!),
                PathStepKind.Key => result.Key(step.Name!),
                _ => result.At(step.Index),
            };
        }
        return result;
    }
}
