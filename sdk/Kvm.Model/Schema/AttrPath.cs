using System.Globalization;
using System.Text;

namespace Kvm.Model.Schema;

/// <summary>One step of an attribute path: an attribute name, a map key or a list index.</summary>
public readonly record struct PathStep(PathStepKind Kind, string? Name, int Index)
{
    /// <summary>An attribute step.</summary>
    public static PathStep Attribute(string name) => new(PathStepKind.Attribute, name, 0);

    /// <summary>A map-key step.</summary>
    public static PathStep Key(string key) => new(PathStepKind.Key, key, 0);

    /// <summary>A list-index step.</summary>
    public static PathStep At(int index) => new(PathStepKind.Index, null, index);
}

/// <summary>Kinds of path steps.</summary>
public enum PathStepKind
{
    /// <summary>Object attribute.</summary>
    Attribute,
    /// <summary>Map element by key.</summary>
    Key,
    /// <summary>List element by index.</summary>
    Index,
}

/// <summary>
/// A path to a value inside a resource, rendered the way Terraform users read it:
/// <c>disks["scsi0"].size_gib</c>, <c>tags[2]</c>. Errors are keyed by it everywhere.
/// </summary>
public sealed class AttrPath : IEquatable<AttrPath>
{
    /// <summary>The resource itself.</summary>
    public static readonly AttrPath Root = new([]);

    private AttrPath(PathStep[] steps) => Steps = steps;

    /// <summary>The steps from the root.</summary>
    public IReadOnlyList<PathStep> Steps { get; }

    /// <summary>This path followed by an attribute.</summary>
    public AttrPath Attr(string name) => Append(PathStep.Attribute(name));

    /// <summary>This path followed by a map key.</summary>
    public AttrPath Key(string key) => Append(PathStep.Key(key));

    /// <summary>This path followed by a list index.</summary>
    public AttrPath At(int index) => Append(PathStep.At(index));

    private AttrPath Append(PathStep step) => new([.. Steps, step]);

    /// <summary>Parses the rendered form back (the inverse of <see cref="ToString"/>).</summary>
    public static AttrPath Parse(string text)
    {
        var steps = new List<PathStep>();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '.') { i++; continue; }
            if (text[i] == '[')
            {
                if (i + 1 < text.Length && text[i + 1] == '"')
                {
                    var sb = new StringBuilder();
                    var j = i + 2;
                    for (; j < text.Length && text[j] != '"'; j++)
                    {
                        if (text[j] == '\\' && j + 1 < text.Length) j++;
                        sb.Append(text[j]);
                    }
                    steps.Add(PathStep.Key(sb.ToString()));
                    i = j + 2; // past "]
                }
                else
                {
                    var end = text.IndexOf(']', i);
                    if (end < 0) throw new FormatException($"Unclosed index in path '{text}'.");
                    steps.Add(PathStep.At(int.Parse(text.AsSpan(i + 1, end - i - 1), CultureInfo.InvariantCulture)));
                    i = end + 1;
                }
                continue;
            }
            var stop = text.IndexOfAny(['.', '['], i);
            if (stop < 0) stop = text.Length;
            steps.Add(PathStep.Attribute(text[i..stop]));
            i = stop;
        }
        return new AttrPath([.. steps]);
    }

    /// <inheritdoc />
    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var step in Steps)
        {
            switch (step.Kind)
            {
                case PathStepKind.Attribute:
                    if (sb.Length > 0) sb.Append('.');
                    sb.Append(step.Name);
                    break;
                case PathStepKind.Key:
                    sb.Append("[\"").Append(step.Name!.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)).Append("\"]");
                    break;
                default:
                    sb.Append('[').Append(step.Index.ToString(CultureInfo.InvariantCulture)).Append(']');
                    break;
            }
        }
        return sb.ToString();
    }

    /// <inheritdoc />
    public bool Equals(AttrPath? other) => other is not null && Steps.SequenceEqual(other.Steps);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as AttrPath);

    /// <inheritdoc />
    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);
}
