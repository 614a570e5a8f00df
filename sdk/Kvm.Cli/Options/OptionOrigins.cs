using Kvm.Model.Schema;

namespace Kvm.Cli.Options;

/// <summary>
/// Which command-line option set which part of a spec, so an error at <c>disks["scsi0"].size_gib</c> (from
/// kvmctl's own validation or from the agent) names <c>--disk scsi0=…</c>, the thing the user typed.
/// </summary>
public sealed class OptionOrigins
{
    private readonly List<(string Path, string Option)> _origins = [];

    /// <summary>Records that <paramref name="option"/> (as typed) set the value at <paramref name="path"/> and below.</summary>
    public void Record(AttrPath path, string option) => _origins.Add((path.ToString(), option));

    /// <summary>Nothing recorded: no setting was given.</summary>
    public bool IsEmpty => _origins.Count == 0;

    /// <summary>The option that set <paramref name="attribute"/> or one of its parents, most specific first; null when none did.</summary>
    public string? OptionFor(string attribute)
    {
        var covering = _origins.Where(o => Covers(o.Path, attribute)).OrderByDescending(o => o.Path.Length).Select(o => o.Option).FirstOrDefault();
        if (covering is not null)
            return covering;
        // An error about a whole part (the agent's "cpu": too many vCPUs) names every option that set something inside it.
        var inside = _origins.Where(o => Covers(attribute, o.Path)).Select(o => o.Option).Distinct(StringComparer.Ordinal).ToList();
        return inside.Count > 0 ? string.Join(", ", inside) : null;
    }

    private static bool Covers(string prefix, string attribute) =>
        attribute.StartsWith(prefix, StringComparison.Ordinal)
        && (attribute.Length == prefix.Length || attribute[prefix.Length] is '.' or '[');

    /// <summary>One line for an error: the option first, then the path it concerns, then what is wrong.</summary>
    public string Describe(string attribute, string detail)
    {
        if (attribute.Length == 0)
            return detail;
        return OptionFor(attribute) is { } option
            ? $"{option}: {detail} ({attribute})"
            : $"{attribute}: {detail}";
    }
}
