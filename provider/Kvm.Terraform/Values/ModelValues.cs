using System.Text.Json.Nodes;
using Kvm.Model.Schema;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Schema;

namespace Kvm.Terraform.Values;

/// <summary>A Terraform value as model JSON, with the places that were still unknown.</summary>
public sealed record ModelJsonValue(JsonObject Json, IReadOnlyList<AttrPath> UnknownPaths)
{
    public bool IsWhollyKnown => UnknownPaths.Count == 0;
}

/// <summary>
/// Terraform values ⇄ the model's JSON (the agent's contract). Names are identical on both sides, so
/// this only drops provider-only attributes (<c>id</c>, <c>host</c>, <c>timeouts</c>), leaves nulls
/// out, and sets unknowns aside.
/// </summary>
public static class ModelValues
{
    /// <summary>The model attributes of an object value; unknown parts are omitted and reported.</summary>
    public static ModelJsonValue ToModelJson(CtyValue value, IReadOnlyList<TfAttribute> attributes)
    {
        var unknown = new List<AttrPath>();
        var json = ObjectToJson(value, attributes, AttrPath.Root, unknown);
        return new ModelJsonValue(json, unknown);
    }

    /// <summary>Only what the user sets (agent-set values left out), as sent to create or update.</summary>
    public static JsonObject ToSpecJson(CtyValue value, IReadOnlyList<TfAttribute> attributes) =>
        ToModelJson(value, [.. attributes.Where(a => a.Presence != TfPresence.Computed)]).Json;

    private static JsonObject ObjectToJson(CtyValue value, IReadOnlyList<TfAttribute> attributes, AttrPath path, List<AttrPath> unknown)
    {
        var json = new JsonObject();
        foreach (var attribute in attributes)
        {
            if (attribute.Model is null)
                continue;
            var child = path.Attr(attribute.Name);
            var node = ToNode(value.GetAttr(attribute.Name), attribute, child, unknown);
            if (node is not null)
                json[attribute.Name] = node;
        }
        return json;
    }

    private static JsonNode? ToNode(CtyValue value, TfAttribute attribute, AttrPath path, List<AttrPath> unknown)
    {
        if (!value.IsKnown)
        {
            unknown.Add(path);
            return null;
        }
        if (value.IsNull)
            return null;
        if (attribute.Nested is { } nested)
        {
            switch (value.Type.Kind)
            {
                case CtyKind.Object:
                    return ObjectToJson(value, nested.Attributes, path, unknown);
                case CtyKind.Map:
                    var map = new JsonObject();
                    foreach (var (key, element) in value.Entries)
                    {
                        if (!element.IsKnown)
                        {
                            unknown.Add(path.Key(key));
                            continue;
                        }
                        map[key] = element.IsNull ? null : ObjectToJson(element, nested.Attributes, path.Key(key), unknown);
                    }
                    return map;
                default:
                    var array = new JsonArray();
                    var i = 0;
                    foreach (var element in value.Elements)
                    {
                        if (!element.IsKnown)
                            unknown.Add(path.At(i));
                        else
                            array.Add(element.IsNull ? null : ObjectToJson(element, nested.Attributes, path.At(i), unknown));
                        i++;
                    }
                    return array;
            }
        }
        if (!value.IsWhollyKnown)
        {
            // A collection with unknown elements: its shape is not settled, so none of it is checked yet.
            unknown.Add(path);
            return null;
        }
        return CtyJsonNode.ToNode(value);
    }

    /// <summary>An object of <paramref name="block"/>'s type from model JSON plus the provider-only attributes.</summary>
    public static CtyValue FromModelJson(JsonObject json, TfBlock block, IReadOnlyDictionary<string, CtyValue>? extras = null)
    {
        var values = new List<KeyValuePair<string, CtyValue>>();
        foreach (var attribute in block.Attributes)
        {
            if (attribute.Model is not null)
                values.Add(new(attribute.Name, CtyJsonNode.FromNode(json[attribute.Name], attribute.ImpliedType)));
            else if (extras is not null && extras.TryGetValue(attribute.Name, out var extra))
                values.Add(new(attribute.Name, extra));
        }
        foreach (var nested in block.BlockTypes)
        {
            if (extras is not null && extras.TryGetValue(nested.TypeName, out var extra))
                values.Add(new(nested.TypeName, extra));
        }
        return CtyValue.Object(block.ImpliedType, values);
    }

    /// <summary>A string attribute of a known object, or null.</summary>
    public static string? StringAttr(CtyValue obj, string name)
    {
        if (obj.IsNull || !obj.IsKnown || !obj.Type.HasAttribute(name))
            return null;
        var v = obj.GetAttr(name);
        return v.IsKnown && !v.IsNull ? v.AsString() : null;
    }

    /// <summary>The id text of a model JSON value (<c>vm_id</c> 100 → "100").</summary>
    public static string? IdText(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };
}
