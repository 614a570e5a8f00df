using System.Text;
using Kvm.Model.Schema;

namespace Kvm.Pulumi.Values;

/// <summary>
/// The <c>ignoreChanges</c> paths the engine passes to Diff and Update, in its property-path syntax
/// (<c>description</c>, <c>disks["scsi0"].sizeGib</c>, <c>disks.scsi0.sizeGib</c>, <c>tags[0]</c>,
/// <c>disks[*]</c>). The engine already copies old inputs over ignored new ones before Check; the
/// provider also drops changes under these paths from its diff, because it compares against the
/// last read state, which may differ from the old inputs (drift found by refresh).
/// </summary>
internal sealed class IgnoredPaths
{
    private const string Wildcard = "\0*";
    private readonly List<string[]> _patterns;

    private IgnoredPaths(List<string[]> patterns) => _patterns = patterns;

    public static IgnoredPaths Parse(IEnumerable<string> paths) =>
        new([.. paths.Select(TryParse).OfType<string[]>()]);

    public bool IsEmpty => _patterns.Count == 0;

    /// <summary>True when <paramref name="path"/> is an ignored path or lies below one.</summary>
    public bool Covers(AttrPath path)
    {
        var segments = path.Steps.Select(step => step.Kind switch
        {
            PathStepKind.Attribute => Naming.ToCamel(step.Name!),
            PathStepKind.Key => step.Name!,
            _ => step.Index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }).ToArray();
        return _patterns.Any(pattern => pattern.Length <= segments.Length
            && pattern.Select((segment, i) => segment == Wildcard || segment == segments[i]).All(match => match));
    }

    // The engine skips paths it cannot parse; so does this.
    private static string[]? TryParse(string text)
    {
        var segments = new List<string>();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '.')
            {
                if (segments.Count == 0)
                    return null;
                i++;
            }
            if (i < text.Length && text[i] == '[')
            {
                var close = text.IndexOf(']', i);
                if (close < 0)
                    return null;
                var inner = text[(i + 1)..close];
                if (inner.StartsWith('"'))
                {
                    // A quoted key may itself contain ']' or escaped quotes.
                    var key = new StringBuilder();
                    var j = i + 2;
                    for (; j < text.Length && text[j] != '"'; j++)
                    {
                        if (text[j] == '\\' && j + 1 < text.Length)
                            j++;
                        key.Append(text[j]);
                    }
                    if (j + 1 >= text.Length || text[j + 1] != ']')
                        return null;
                    segments.Add(key.ToString());
                    i = j + 2;
                }
                else
                {
                    segments.Add(inner == "*" ? Wildcard : inner);
                    i = close + 1;
                }
                continue;
            }
            var end = i;
            while (end < text.Length && text[end] is not ('.' or '['))
                end++;
            if (end == i)
                return null;
            var name = text[i..end];
            segments.Add(name == "*" ? Wildcard : name);
            i = end;
        }
        return segments.Count == 0 ? null : [.. segments];
    }
}
