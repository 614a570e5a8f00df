using System.Collections;
using System.Text.Json;
using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>
/// Fills unset settings with their declared defaults. The stored spec keeps nulls (GET returns what the
/// user set); builders and change classification work on the effective copy this returns.
/// </summary>
public static class Defaults
{
    /// <summary>A deep copy of <paramref name="value"/> with every declared default filled in.</summary>
    public static T Apply<T>(T value) where T : class
    {
        var copy = (T)JsonSerializer.Deserialize(
            JsonSerializer.SerializeToUtf8Bytes(value, value.GetType(), ModelJson.Options),
            value.GetType(), ModelJson.Options)!;
        Fill(copy, Schemas.For(copy.GetType()));
        return copy;
    }

    private static void Fill(object target, ObjectSchema schema)
    {
        foreach (var attribute in schema.Attributes)
        {
            var value = attribute.GetValue(target);
            if (value is null)
            {
                if (attribute.Setting.Default is { } d)
                {
                    attribute.SetValue(target, ConvertDefault(d, attribute.Property.PropertyType));
                }
                else if (attribute.Type.Kind == ValueKind.Object && !attribute.Setting.NullMeansAbsent && !attribute.Setting.ReadOnly)
                {
                    var created = Activator.CreateInstance(attribute.Type.Object!.ClrType)!;
                    Fill(created, attribute.Type.Object);
                    attribute.SetValue(target, created);
                }
                continue;
            }
            if (attribute.Type.Kind == ValueKind.Object)
                Fill(value, attribute.Type.Object!);
            else if (attribute.Type is { Kind: ValueKind.Map, Element.Kind: ValueKind.Object })
                foreach (DictionaryEntry entry in (IDictionary)value)
                    if (entry.Value is not null)
                        Fill(entry.Value, attribute.Type.Element.Object!);
        }
    }

    private static object ConvertDefault(object value, Type target)
    {
        var t = Nullable.GetUnderlyingType(target) ?? target;
        return t == value.GetType() ? value : Convert.ChangeType(value, t, System.Globalization.CultureInfo.InvariantCulture);
    }
}
