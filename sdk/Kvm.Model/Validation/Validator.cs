using System.Collections;
using System.Globalization;
using System.Text.RegularExpressions;
using Kvm.Model.Schema;

namespace Kvm.Model.Validation;

/// <summary>One problem with user input, keyed by the attribute path (<c>disks["scsi0"].cache</c>).</summary>
public sealed record ValidationError(string Attribute, string Detail)
{
    /// <inheritdoc />
    public override string ToString() => Attribute.Length == 0 ? Detail : $"{Attribute}: {Detail}";
}

/// <summary>Collects errors while validating; records add their cross-field rules through it.</summary>
public sealed class ValidationContext
{
    private readonly List<ValidationError> _errors = [];

    /// <summary>Errors found so far.</summary>
    public IReadOnlyList<ValidationError> Errors => _errors;

    /// <summary>Records an error at a path.</summary>
    public void Add(AttrPath path, string detail) => _errors.Add(new ValidationError(path.ToString(), detail));
}

/// <summary>Cross-field rules a record adds to the declarative ones.</summary>
public interface IValidatable
{
    /// <summary>Adds errors for rules that involve more than one attribute.</summary>
    void Validate(ValidationContext context, AttrPath path);
}

/// <summary>
/// Validates a record against its declarations, purely: the Terraform plan, the Pulumi check and the
/// agent all call this, so a user sees the same message with the same path wherever they are.
/// </summary>
public static class Validator
{
    private static readonly Dictionary<string, Regex> Patterns = new(StringComparer.Ordinal);
    private static readonly Lock PatternLock = new();

    /// <summary>Every error in <paramref name="value"/>; empty when it is valid.</summary>
    public static IReadOnlyList<ValidationError> Validate(object value)
    {
        var context = new ValidationContext();
        ValidateObject(value, Schemas.For(value.GetType()), AttrPath.Root, context);
        return context.Errors;
    }

    private static void ValidateObject(object value, ObjectSchema schema, AttrPath path, ValidationContext context)
    {
        foreach (var attribute in schema.Attributes)
        {
            if (attribute.Setting.ReadOnly)
                continue;
            var child = path.Attr(attribute.Name);
            var v = attribute.GetValue(value);
            if (v is null)
            {
                if (attribute.Setting.Required)
                    context.Add(child, "is required.");
                continue;
            }
            ValidateValue(v, attribute.Type, attribute.Setting, child, context);
        }
        if (value is IValidatable validatable)
            validatable.Validate(context, path);
    }

    private static void ValidateValue(object v, SchemaType type, SettingAttribute setting, AttrPath path, ValidationContext context)
    {
        switch (type.Kind)
        {
            case ValueKind.String:
                ValidateString((string)v, setting, path, context);
                break;
            case ValueKind.Integer:
            case ValueKind.Number:
                ValidateNumber(Convert.ToDouble(v, CultureInfo.InvariantCulture), setting, path, context);
                break;
            case ValueKind.List:
            case ValueKind.Set:
                var index = 0;
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var element in (IEnumerable)v)
                {
                    var at = path.At(index++);
                    if (element is null) { context.Add(at, "must not be null."); continue; }
                    if (type.Kind == ValueKind.Set && !seen.Add(Convert.ToString(element, CultureInfo.InvariantCulture)!))
                        context.Add(at, $"duplicate value \"{element}\".");
                    ValidateElement(element, type.Element!, setting, at, context);
                }
                break;
            case ValueKind.Map:
                foreach (DictionaryEntry entry in (IDictionary)v)
                {
                    var key = (string)entry.Key;
                    var at = path.Key(key);
                    if (setting.KeyPattern is not null && !Matches(setting.KeyPattern, key))
                    {
                        context.Add(at, $"\"{Printable(key)}\" is not a valid key: expected {setting.KeyPatternText ?? setting.KeyPattern}.");
                        continue;
                    }
                    if (entry.Value is null) { context.Add(at, "must not be null."); continue; }
                    ValidateElement(entry.Value, type.Element!, setting, at, context);
                }
                break;
            case ValueKind.Object:
                ValidateObject(v, type.Object!, path, context);
                break;
            case ValueKind.Bool:
                break;
        }
    }

    // Element rules (pattern, one-of, range) of a list or map apply to each primitive element.
    private static void ValidateElement(object element, SchemaType type, SettingAttribute setting, AttrPath path, ValidationContext context)
    {
        if (type.Kind == ValueKind.Object)
            ValidateObject(element, type.Object!, path, context);
        else
            ValidateValue(element, type, setting, path, context);
    }

    private static void ValidateString(string s, SettingAttribute setting, AttrPath path, ValidationContext context)
    {
        if (s.Contains('\0', StringComparison.Ordinal))
        {
            context.Add(path, "must not contain NUL characters.");
            return;
        }
        if (setting.MaxLength > 0 && s.Length > setting.MaxLength)
        {
            context.Add(path, $"is {s.Length} characters long; at most {setting.MaxLength} are allowed.");
            return;
        }
        if (setting.OneOf is { } allowed && !allowed.Contains(s, StringComparer.Ordinal))
        {
            context.Add(path, $"\"{Printable(s)}\" is not one of: {string.Join(", ", allowed)}.");
            return;
        }
        if (setting.Pattern is { } pattern && !Matches(pattern, s))
            context.Add(path, $"\"{Printable(s)}\" is not valid: expected {setting.PatternText ?? pattern}.");
    }

    private static void ValidateNumber(double d, SettingAttribute setting, AttrPath path, ValidationContext context)
    {
        var min = setting.Min;
        var max = setting.Max;
        if ((!double.IsNaN(min) && d < min) || (!double.IsNaN(max) && d > max))
        {
            var range = (double.IsNaN(min), double.IsNaN(max)) switch
            {
                (false, false) => $"between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}",
                (false, true) => $"at least {min.ToString(CultureInfo.InvariantCulture)}",
                _ => $"at most {max.ToString(CultureInfo.InvariantCulture)}",
            };
            context.Add(path, $"{d.ToString(CultureInfo.InvariantCulture)} is out of range: must be {range}.");
        }
    }

    /// <summary>Full-match test with a cached compiled expression.</summary>
    public static bool Matches(string pattern, string value)
    {
        Regex? regex;
        lock (PatternLock)
        {
            if (!Patterns.TryGetValue(pattern, out regex))
            {
                regex = new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
                Patterns[pattern] = regex;
            }
        }
        return regex.IsMatch(value);
    }

    /// <summary>Shows control characters in messages instead of printing them raw.</summary>
    public static string Printable(string s)
    {
        var clipped = s.Length > 80 ? s[..80] + "…" : s;
        return string.Concat(clipped.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }
}
