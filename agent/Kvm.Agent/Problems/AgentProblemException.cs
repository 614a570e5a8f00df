using Kvm.Model;

namespace Kvm.Agent.Problems;

/// <summary>
/// An expected failure that becomes an RFC 9457 problem response: thrown by feature code,
/// rendered in one place. <see cref="ProblemTypes"/> holds the stable type URIs.
/// </summary>
public sealed class AgentProblemException(int status, string type, string title, string detail, IReadOnlyList<ProblemError>? errors = null)
    : Exception(detail)
{
    /// <summary>HTTP status.</summary>
    public int Status { get; } = status;
    /// <summary>Stable problem type URI.</summary>
    public string Type { get; } = type;
    /// <summary>Short summary.</summary>
    public string Title { get; } = title;
    /// <summary>Validation errors keyed by attribute path.</summary>
    public IReadOnlyList<ProblemError>? Errors { get; } = errors;

    /// <summary>422 with attribute-keyed errors.</summary>
    public static AgentProblemException Validation(IEnumerable<ProblemError> errors, string? detail = null)
    {
        var list = errors.ToList();
        return new(422, ProblemTypes.Validation, "Invalid settings", detail ?? string.Join(" ", list.Select(e => e.Attribute.Length == 0 ? e.Detail : $"{e.Attribute}: {e.Detail}")), list);
    }

    /// <summary>422 for one attribute.</summary>
    public static AgentProblemException Invalid(string attribute, string detail) => Validation([new ProblemError(attribute, detail)]);

    /// <summary>404.</summary>
    public static AgentProblemException NotFound(string detail) => new(404, ProblemTypes.NotFound, "Not found", detail);

    /// <summary>409.</summary>
    public static AgentProblemException Conflict(string detail) => new(409, ProblemTypes.Conflict, "Conflict", detail);

    /// <summary>409 for an operation the current state does not allow.</summary>
    public static AgentProblemException InvalidState(string detail) => new(409, ProblemTypes.InvalidState, "Not possible in the current state", detail);

    /// <summary>507 for a full disk.</summary>
    public static AgentProblemException NoSpace(string detail) => new(507, ProblemTypes.NoSpace, "No space left on the device", detail);

    /// <summary>500 for a host command that failed.</summary>
    public static AgentProblemException HostCommand(string detail) => new(500, ProblemTypes.HostCommandFailed, "A host command failed", detail);
}
