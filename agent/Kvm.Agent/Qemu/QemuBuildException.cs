using Kvm.Model.Validation;

namespace Kvm.Agent.Qemu;

/// <summary>
/// The spec cannot be turned into a QEMU command on this host (a CPU model QEMU lacks, secure boot
/// without the firmware, …). Carries every problem found, keyed by attribute path like validation errors,
/// so the API renders it as a 422 the user can act on.
/// </summary>
public sealed class QemuBuildException(IReadOnlyList<ValidationError> errors)
    : Exception(string.Join(" ", errors.Select(e => e.ToString())))
{
    /// <summary>The problems, in the order they were found.</summary>
    public IReadOnlyList<ValidationError> Errors { get; } = errors;
}
