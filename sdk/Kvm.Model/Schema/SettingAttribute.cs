namespace Kvm.Model.Schema;

/// <summary>How a change to a setting reaches a VM or resource that already exists.</summary>
public enum UpdateKind
{
    /// <summary>Applied at once, while the VM runs (QMP, metadata, power state).</summary>
    Live,
    /// <summary>Stored at once, takes effect at the next start of the VM (pending until then).</summary>
    Restart,
    /// <summary>Create-only: a change needs the resource re-created.</summary>
    Replace,
}

/// <summary>
/// Declares one user-facing setting: the single place its description, default, validation and update
/// behaviour live. The Terraform schema, the Pulumi schema, the agent JSON, docs and validation all
/// project from these.
/// </summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
public sealed class SettingAttribute(string description) : Attribute
{
    /// <summary>Markdown description shown in docs, schemas and error messages.</summary>
    public string Description { get; } = description;

    /// <summary>The effective value when unset; applied by <see cref="Defaults"/>, documented everywhere.</summary>
    public object? Default { get; init; }

    /// <summary>Documented default when it depends on other settings (no <see cref="Default"/> then).</summary>
    public string? DefaultText { get; init; }

    /// <summary>How changes apply to an existing resource.</summary>
    public UpdateKind Update { get; init; } = UpdateKind.Restart;

    /// <summary>Must be set by the user.</summary>
    public bool Required { get; init; }

    /// <summary>Set by the agent (read-only), or by the agent when the user leaves it unset (with <see cref="Required"/> false and <see cref="Update"/>).</summary>
    public bool Computed { get; init; }

    /// <summary>Only the agent sets it; the user cannot (Terraform computed-only, Pulumi output-only).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Never logged or shown in plans; a Pulumi secret.</summary>
    public bool Sensitive { get; init; }

    /// <summary>A list whose order carries no meaning (Terraform set).</summary>
    public bool Set { get; init; }

    /// <summary>Allowed values of a string (or of each element of a string list).</summary>
    public string[]? OneOf { get; init; }

    /// <summary>Inclusive lower bound of a number (NaN: none).</summary>
    public double Min { get; init; } = double.NaN;

    /// <summary>Inclusive upper bound of a number (NaN: none).</summary>
    public double Max { get; init; } = double.NaN;

    /// <summary>Full-match regular expression for a string or each element of a string list.</summary>
    public string? Pattern { get; init; }

    /// <summary>Human words for <see cref="Pattern"/>, used in the error message.</summary>
    public string? PatternText { get; init; }

    /// <summary>Maximum length of a string (0: none).</summary>
    public int MaxLength { get; init; }

    /// <summary>Full-match regular expression for the keys of a map (slot names).</summary>
    public string? KeyPattern { get; init; }

    /// <summary>Human words for <see cref="KeyPattern"/>.</summary>
    public string? KeyPatternText { get; init; }

    /// <summary>
    /// For a map of devices: the VM <c>hotplug</c> class (<c>disk</c>, <c>network</c>, <c>usb</c>) under which adding or
    /// removing one entry applies live on a running VM. The resource decides per entry (<see cref="IHotplugRules"/>);
    /// otherwise, and when its <c>hotplug</c> excludes the class, an entry change takes <see cref="Update"/>'s kind.
    /// On a live scalar setting (<c>cpu.vcpus</c>, <c>memory.size_mib</c>): the class without which a change needs a restart
    /// (<see cref="Kvm.Model.VmSpec.RefineHotplugChanges"/> applies it).
    /// </summary>
    public string? Hotplug { get; init; }

    /// <summary>For a nested object: null means the feature is absent, so defaults do not create it.</summary>
    public bool NullMeansAbsent { get; init; }
}

/// <summary>Marks a record as a top-level resource or data source and names it in every projection.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ResourceAttribute(string name, string description) : Attribute
{
    /// <summary>The snake_case resource name without the provider prefix, e.g. <c>vm</c>, <c>storage_pool</c>.</summary>
    public string Name { get; } = name;

    /// <summary>Markdown description of the resource.</summary>
    public string Description { get; } = description;
}
