using System.Collections;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Kvm.Model.Schema;

namespace Kvm.Model;

/// <summary>
/// Sensitive settings never leave the agent in clear: GET answers a fingerprint (<c>sha256:…</c>) instead. The
/// fingerprint is salted with the attribute path, so equal secrets in different settings do not look alike.
/// The plugins put the value they know back when the fingerprint matches it (state keeps what the user wrote,
/// the plan stays empty); a client that sends a fingerprint back unchanged keeps the stored secret.
/// </summary>
public static class Secrets
{
    /// <summary>Prefix of every fingerprint.</summary>
    public const string Prefix = "sha256:";

    /// <summary>The fingerprint of <paramref name="value"/> at <paramref name="attribute"/> (path without map keys, e.g. <c>cloud_init.user.password</c>).</summary>
    public static string Fingerprint(string attribute, string value) =>
        Prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("kvm-secret\0" + attribute + "\0" + value)));

    /// <summary>True when <paramref name="candidate"/> is the fingerprint of <paramref name="value"/>.</summary>
    public static bool IsFingerprintOf(string attribute, string? candidate, string? value) =>
        candidate is not null && value is not null && candidate.StartsWith(Prefix, StringComparison.Ordinal)
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(candidate), Encoding.ASCII.GetBytes(Fingerprint(attribute, value)));

    /// <summary>Replaces every sensitive string in <paramref name="model"/> (in place) by its fingerprint.</summary>
    public static void Redact(object model) => Walk(model, null, Schemas.For(model.GetType()), "", (attr, value, _) => Fingerprint(attr, value));

    /// <summary>
    /// Where <paramref name="incoming"/> carries the fingerprint of the secret in <paramref name="stored"/>, puts the
    /// stored secret back (in place): a read-modify-write round trip keeps secrets it never saw.
    /// </summary>
    public static void Unredact(object incoming, object? stored) =>
        Walk(incoming, stored, Schemas.For(incoming.GetType()), "", (attr, value, known) => IsFingerprintOf(attr, value, known) ? known! : value);

    /// <summary>The JSON form of <see cref="Unredact"/>, for plugins that hold state as model JSON.</summary>
    public static void Restore(JsonObject readBack, JsonObject? known, ObjectSchema schema) => Restore(readBack, known, schema, "");

    private static void Restore(JsonObject readBack, JsonObject? known, ObjectSchema schema, string prefix)
    {
        if (known is null)
            return;
        foreach (var attribute in schema.Attributes)
        {
            var name = attribute.Name;
            var path = prefix + name;
            if (readBack[name] is not { } node || known[name] is not { } other)
                continue;
            var type = attribute.Type;
            if (attribute.Setting.Sensitive && type.Kind == ValueKind.String)
            {
                if (node is JsonValue v && v.TryGetValue<string>(out var marker) && other is JsonValue k && k.TryGetValue<string>(out var clear)
                    && IsFingerprintOf(path, marker, clear))
                    readBack[name] = clear;
            }
            else if (type.Kind == ValueKind.Object && node is JsonObject o && other is JsonObject ko)
            {
                Restore(o, ko, type.Object!, path + ".");
            }
            else if (type is { Kind: ValueKind.Map, Element.Kind: ValueKind.Object } && node is JsonObject map && other is JsonObject kmap)
            {
                foreach (var (key, item) in map.ToList())
                    if (item is JsonObject io && kmap[key] is JsonObject kio)
                        Restore(io, kio, type.Element.Object!, path + ".");
            }
        }
    }

    private static void Walk(object target, object? other, ObjectSchema schema, string prefix, Func<string, string, string?, string> map)
    {
        foreach (var attribute in schema.Attributes)
        {
            var value = attribute.GetValue(target);
            if (value is null)
                continue;
            var otherValue = other is null ? null : attribute.GetValue(other);
            var path = prefix + attribute.Name;
            var type = attribute.Type;
            if (attribute.Setting.Sensitive && value is string s)
            {
                attribute.SetValue(target, map(path, s, otherValue as string));
            }
            else if (type.Kind == ValueKind.Object)
            {
                Walk(value, otherValue, type.Object!, path + ".", map);
            }
            else if (type is { Kind: ValueKind.Map, Element.Kind: ValueKind.Object })
            {
                var others = otherValue as IDictionary;
                foreach (DictionaryEntry entry in (IDictionary)value)
                    if (entry.Value is not null)
                        Walk(entry.Value, others is not null && others.Contains(entry.Key) ? others[entry.Key] : null, type.Element.Object!, path + ".", map);
            }
        }
    }
}
