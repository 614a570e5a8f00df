namespace Kvm.Terraform.Cty;

/// <summary>A bound on an unknown number: the value is above (or below) <see cref="Value"/>.</summary>
public sealed record CtyNumberBound(CtyNumber Value, bool Inclusive);

/// <summary>
/// What is known about an unknown value (cty refinements, Terraform ≥ 1.6). Kept so a decoded
/// plan can be echoed and re-encoded without losing them; anything left null is unconstrained.
/// </summary>
public sealed record CtyRefinements
{
    public static readonly CtyRefinements None = new();

    public static readonly CtyRefinements NotNullOnly = new() { NotNull = true };

    /// <summary>The value will not be null once known.</summary>
    public bool NotNull { get; init; }

    /// <summary>Known prefix of an unknown string.</summary>
    public string? StringPrefix { get; init; }

    public CtyNumberBound? NumberLowerBound { get; init; }

    public CtyNumberBound? NumberUpperBound { get; init; }

    /// <summary>Minimum element count of an unknown collection.</summary>
    public long? LengthLowerBound { get; init; }

    /// <summary>Maximum element count of an unknown collection.</summary>
    public long? LengthUpperBound { get; init; }

    public bool IsEmpty =>
        !NotNull && StringPrefix is null && NumberLowerBound is null && NumberUpperBound is null
        && LengthLowerBound is null && LengthUpperBound is null;
}
