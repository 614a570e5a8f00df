using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kvm.Model.Schema;

/// <summary>One setting that differs between two specs, and how the difference can be applied.</summary>
public sealed record SettingChange(string Attribute, UpdateKind Kind);

/// <summary>
/// Classifies the difference between two specs, attribute by attribute, from the declarations: the agent
/// uses it to apply or defer an update, the providers to plan replacement and restart warnings.
/// A change whose effective value is unchanged (null ↔ its default) is classified live: it touches nothing.
/// </summary>
public static class Changes
{
    /// <summary>The changed settings, in schema order.</summary>
    public static IReadOnlyList<SettingChange> Classify<T>(T before, T after) where T : class
    {
        var result = new List<SettingChange>();
        var effectiveBefore = Defaults.Apply(before);
        var effectiveAfter = Defaults.Apply(after);
        Walk(before, after, effectiveBefore, effectiveAfter, Schemas.For(before.GetType()), AttrPath.Root, result,
            (effectiveBefore as IHotplugRules, effectiveAfter as IHotplugRules));
        if (before is VmSpec vmBefore && after is VmSpec vmAfter)
        {
            MemorySpec.RefineSizeChange(vmBefore, vmAfter, result);
            VmSpec.RefineHotplugChanges((VmSpec)(object)effectiveBefore, (VmSpec)(object)effectiveAfter, result);
        }
        return result;
    }

    /// <summary>How adding or removing entry <paramref name="key"/> of a device map applies: live only when both specs allow hot-plugging it.</summary>
    private static UpdateKind EntryKind(SettingAttribute setting, string key, (IHotplugRules? Before, IHotplugRules? After) rules) =>
        setting.Hotplug is { } kind && rules.Before?.CanHotplug(kind, key) == true && rules.After?.CanHotplug(kind, key) == true
            ? UpdateKind.Live
            : setting.Update;

    /// <summary>The most disruptive kind among <paramref name="changes"/>, or null when there are none.</summary>
    public static UpdateKind? Worst(IEnumerable<SettingChange> changes) =>
        changes.Select(c => (UpdateKind?)c.Kind).DefaultIfEmpty(null).Max();

    private static void Walk(object? a, object? b, object? ea, object? eb, ObjectSchema schema, AttrPath path, List<SettingChange> result,
        (IHotplugRules? Before, IHotplugRules? After) rules)
    {
        foreach (var attribute in schema.Attributes)
        {
            if (attribute.Setting.ReadOnly)
                continue;
            var va = a is null ? null : attribute.GetValue(a);
            var vb = b is null ? null : attribute.GetValue(b);
            var eva = ea is null ? null : attribute.GetValue(ea);
            var evb = eb is null ? null : attribute.GetValue(eb);
            var child = path.Attr(attribute.Name);
            var type = attribute.Type;

            if (type.Kind == ValueKind.Object && !(attribute.Setting.NullMeansAbsent && (va is null) != (vb is null)))
            {
                Walk(va, vb, eva, evb, type.Object!, child, result, rules);
                continue;
            }
            if (type is { Kind: ValueKind.Map, Element.Kind: ValueKind.Object })
            {
                var ma = va as IDictionary;
                var mb = vb as IDictionary;
                var keys = new SortedSet<string>(StringComparer.Ordinal);
                foreach (var k in ma?.Keys ?? Array.Empty<string>()) keys.Add((string)k);
                foreach (var k in mb?.Keys ?? Array.Empty<string>()) keys.Add((string)k);
                foreach (var key in keys)
                {
                    var ia = ma is not null && ma.Contains(key) ? ma[key] : null;
                    var ib = mb is not null && mb.Contains(key) ? mb[key] : null;
                    if ((ia is null) != (ib is null))
                    {
                        result.Add(new SettingChange(child.Key(key).ToString(), EntryKind(attribute.Setting, key, rules)));
                        continue;
                    }
                    if (ia is not null)
                        Walk(ia, ib, (eva as IDictionary)?[key], (evb as IDictionary)?[key], type.Element.Object!, child.Key(key), result, rules);
                }
                continue;
            }
            if (SameValue(va, vb, type))
                continue;
            var kind = SameValue(eva, evb, type) ? UpdateKind.Live : attribute.Setting.Update;
            result.Add(new SettingChange(child.ToString(), kind));
        }
    }

    /// <summary>Value equality as the schema sees it: sets ignore order.</summary>
    public static bool SameValue(object? a, object? b, SchemaType type)
    {
        if (a is null || b is null)
            return a is null && b is null;
        var na = JsonSerializer.SerializeToNode(a, a.GetType(), ModelJson.Options);
        var nb = JsonSerializer.SerializeToNode(b, b.GetType(), ModelJson.Options);
        if (type.Kind == ValueKind.Set && na is JsonArray xa && nb is JsonArray xb)
            return xa.Select(n => n?.ToJsonString()).Order(StringComparer.Ordinal)
                .SequenceEqual(xb.Select(n => n?.ToJsonString()).Order(StringComparer.Ordinal));
        return JsonNode.DeepEquals(na, nb);
    }
}
