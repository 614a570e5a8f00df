using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Kvm.Model;
using Kvm.Model.Schema;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Kvm.Cli.Output;

/// <summary>How a verb prints its result.</summary>
public enum Format
{
    /// <summary>For people: tables and sentences.</summary>
    Table,
    /// <summary>The model JSON, indented: for scripts (and jq).</summary>
    Json,
    /// <summary>The same document as YAML.</summary>
    Yaml,
}

/// <summary>--output/-o; unset means the verb's default format (kept out of the option so help shows it in lower case).</summary>
public sealed class OutputOption(Format fallback) : Option<Format?>("--output", "-o")
{
    /// <summary>The chosen format.</summary>
    public Format Get(ParseResult parsed) => parsed.GetValue(this) ?? fallback;
}

/// <summary>The --output option and the JSON/YAML writers every verb shares.</summary>
public static class Formats
{
    /// <summary>An --output/-o option offering <paramref name="formats"/>, the first being the default.</summary>
    public static OutputOption Option(params Format[] formats)
    {
        var names = formats.Select(Name).ToArray();
        var option = new OutputOption(formats[0])
        {
            Description = $"Output format: {string.Join(", ", names)} (default {names[0]}).",
            HelpName = string.Join("|", names),
            CustomParser = result =>
            {
                var text = result.Tokens.Count == 0 ? names[0] : result.Tokens[0].Value;
                var match = formats.Where(f => Name(f) == text.ToLowerInvariant()).ToList();
                if (match.Count == 1)
                    return match[0];
                result.AddError($"--output \"{text}\" is not one of: {string.Join(", ", names)}.");
                return formats[0];
            },
        };
        option.CompletionSources.Add(names);
        return option;
    }

    private static string Name(Format format) => format.ToString().ToLowerInvariant();

    /// <summary>Writes <paramref name="value"/> as model JSON or YAML.</summary>
    public static void Write<T>(TextWriter writer, T value, Format format)
    {
        var node = JsonSerializer.SerializeToNode(value, (JsonTypeInfo<T>)ModelJson.Indented.GetTypeInfo(typeof(T)));
        Write(writer, SettingsFirst(node), format);
    }

    /// <summary>Writes a JSON document as JSON (indented) or YAML.</summary>
    public static void Write(TextWriter writer, JsonNode? node, Format format)
    {
        if (format == Format.Yaml)
        {
            WriteYaml(writer, node);
            return;
        }
        writer.WriteLine(node?.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) ?? "null");
    }

    // Serialization puts a derived record's observed fields (status, pid) before the settings; people read the settings first.
    private static JsonNode? SettingsFirst(JsonNode? node)
    {
        if (node is JsonArray array)
            return new JsonArray([.. array.Select(item => SettingsFirst(item?.DeepClone()))]);
        if (node is not JsonObject obj || !obj.ContainsKey("status") && !obj.ContainsKey("vm_id"))
            return node;
        var readOnly = Schemas.For<Vm>().Attributes.Where(a => a.Setting.ReadOnly).Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        var ordered = new JsonObject();
        foreach (var (key, value) in obj.Where(p => !readOnly.Contains(p.Key)).Concat(obj.Where(p => readOnly.Contains(p.Key))).ToList())
            ordered[key] = value?.DeepClone();
        return ordered;
    }

    // Emitting events (not serializing objects) keeps YAML quoting correct without reflection over the model.
    private static void WriteYaml(TextWriter writer, JsonNode? node)
    {
        var emitter = new Emitter(writer);
        emitter.Emit(new StreamStart());
        emitter.Emit(new DocumentStart());
        Emit(emitter, node);
        emitter.Emit(new DocumentEnd(true));
        emitter.Emit(new StreamEnd());
    }

    private static void Emit(IEmitter emitter, JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                emitter.Emit(new MappingStart());
                foreach (var (key, value) in obj)
                {
                    emitter.Emit(new Scalar(key));
                    Emit(emitter, value);
                }
                emitter.Emit(new MappingEnd());
                break;
            case JsonArray array:
                emitter.Emit(new SequenceStart(null, null, false, array.All(IsScalar) && array.Count <= 8 ? SequenceStyle.Flow : SequenceStyle.Block));
                foreach (var item in array)
                    Emit(emitter, item);
                emitter.Emit(new SequenceEnd());
                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                var text = value.GetValue<string>();
                // Strings that YAML would read back as another type (true, 12, null, 1e3) are quoted.
                var plainIsAmbiguous = text.Length == 0 || bool.TryParse(text, out _) || double.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out _)
                    || text is "null" or "~" or "yes" or "no" or "on" or "off" or "Yes" or "No" or "On" or "Off" or "Null" or "NULL";
                emitter.Emit(new Scalar(null, null, text, plainIsAmbiguous ? ScalarStyle.DoubleQuoted : ScalarStyle.Any, !plainIsAmbiguous, true));
                break;
            case JsonValue value:
                emitter.Emit(new Scalar(value.ToJsonString()));
                break;
            default:
                emitter.Emit(new Scalar(null, null, "null", ScalarStyle.Plain, true, false));
                break;
        }
    }

    private static bool IsScalar(JsonNode? node) => node is null or JsonValue;

    /// <summary>Bytes for people: 1.5 GiB.</summary>
    public static string Bytes(long? bytes)
    {
        if (bytes is not { } b)
            return "";
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        double size = b;
        var unit = 0;
        while (size >= 1024 && unit < units.Length - 1)
        {
            size /= 1024;
            unit++;
        }
        return unit == 0 ? $"{b} B" : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{size:0.#} {units[unit]}");
    }

    /// <summary>Uptime for people: 3d 04:05:06, 12:34, 42s.</summary>
    public static string Uptime(string? startedAt, DateTimeOffset now)
    {
        if (startedAt is null || !DateTimeOffset.TryParse(startedAt, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var started))
            return "";
        var t = now - started;
        if (t < TimeSpan.Zero)
            t = TimeSpan.Zero;
        return t.TotalDays >= 1 ? $"{(int)t.TotalDays}d {t:hh\\:mm\\:ss}"
            : t.TotalHours >= 1 ? $"{t:h\\:mm\\:ss}"
            : t.TotalMinutes >= 1 ? $"{t:m\\:ss}"
            : $"{(int)t.TotalSeconds}s";
    }
}
