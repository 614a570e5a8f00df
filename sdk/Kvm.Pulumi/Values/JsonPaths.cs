using System.Text;
using System.Text.Json.Nodes;
using Kvm.Model.Schema;

namespace Kvm.Pulumi.Values;

/// <summary>Attribute paths over model JSON, and their Pulumi spelling.</summary>
internal static class JsonPaths
{
    /// <summary>The node at <paramref name="path"/>, or null when any step is missing.</summary>
    public static JsonNode? Get(JsonNode? root, AttrPath path)
    {
        var node = root;
        foreach (var step in path.Steps)
        {
            node = (step.Kind, node) switch
            {
                (PathStepKind.Attribute or PathStepKind.Key, JsonObject obj) => obj[step.Name!],
                (PathStepKind.Index, JsonArray array) when step.Index < array.Count => array[step.Index],
                _ => null,
            };
            if (node is null)
                return null;
        }
        return node;
    }

    /// <summary>Sets (or, with null, removes) the value at a path whose parent exists.</summary>
    public static void Set(JsonNode root, AttrPath path, JsonNode? value)
    {
        if (path.Steps.Count == 0)
            return;
        var parent = Get(root, Parent(path));
        var last = path.Steps[^1];
        switch (parent)
        {
            case JsonObject obj when last.Kind != PathStepKind.Index:
                if (value is null)
                    obj.Remove(last.Name!);
                else
                    obj[last.Name!] = value;
                break;
            case JsonArray array when last.Kind == PathStepKind.Index && last.Index < array.Count:
                // List elements keep their positions: a removed element becomes null.
                array[last.Index] = value;
                break;
        }
    }

    public static void Remove(JsonNode root, AttrPath path) => Set(root, path, null);

    public static AttrPath Parent(AttrPath path)
    {
        var parent = AttrPath.Root;
        for (var i = 0; i < path.Steps.Count - 1; i++)
            parent = Append(parent, path.Steps[i]);
        return parent;
    }

    public static AttrPath Append(AttrPath path, PathStep step) => step.Kind switch
    {
        PathStepKind.Attribute => path.Attr(step.Name!),
        PathStepKind.Key => path.Key(step.Name!),
        _ => path.At(step.Index),
    };

    /// <summary>True when <paramref name="path"/> equals <paramref name="prefix"/> or lies below it.</summary>
    public static bool StartsWith(AttrPath path, AttrPath prefix) =>
        prefix.Steps.Count <= path.Steps.Count && prefix.Steps.SequenceEqual(path.Steps.Take(prefix.Steps.Count));

    /// <summary>The top-level property a path starts with, in Pulumi's camelCase.</summary>
    public static string TopLevel(AttrPath path) => Naming.ToCamel(path.Steps[0].Name!);

    /// <summary>
    /// A property path the way the engine parses and shows it: camelCase names,
    /// <c>disks["scsi0"].sizeGib</c>, <c>tags[1]</c>.
    /// </summary>
    public static string ToPulumi(AttrPath path)
    {
        var text = new StringBuilder();
        foreach (var step in path.Steps)
        {
            switch (step.Kind)
            {
                case PathStepKind.Attribute:
                    if (text.Length > 0)
                        text.Append('.');
                    text.Append(Naming.ToCamel(step.Name!));
                    break;
                case PathStepKind.Key:
                    text.Append("[\"").Append(step.Name!.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)).Append("\"]");
                    break;
                default:
                    text.Append('[').Append(step.Index).Append(']');
                    break;
            }
        }
        return text.ToString();
    }
}
