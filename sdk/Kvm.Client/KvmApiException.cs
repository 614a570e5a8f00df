using System.Net;
using Kvm.Model;

namespace Kvm.Client;

/// <summary>
/// The agent answered with a problem (RFC 9457): one exception type for every failed call, carrying the stable
/// problem <see cref="Type"/> and the attribute-keyed errors the plugins turn into diagnostics.
/// </summary>
public sealed class KvmApiException : Exception
{
    /// <summary>Creates the exception from a problem document.</summary>
    public KvmApiException(HttpStatusCode status, Problem problem, TimeSpan? retryAfter = null)
        : base(Describe(status, problem))
    {
        Status = status;
        Type = problem.Type ?? "about:blank";
        Title = problem.Title ?? status.ToString();
        Detail = problem.Detail ?? "";
        Errors = problem.Errors ?? [];
        RetryAfter = retryAfter;
    }

    /// <summary>HTTP status.</summary>
    public HttpStatusCode Status { get; }
    /// <summary>Stable problem type URI (<see cref="ProblemTypes"/>).</summary>
    public string Type { get; }
    /// <summary>Short summary.</summary>
    public string Title { get; }
    /// <summary>What happened, for people.</summary>
    public string Detail { get; }
    /// <summary>Validation errors, each with the attribute path (<c>disks["scsi0"].size_gib</c>) it concerns.</summary>
    public IReadOnlyList<ProblemError> Errors { get; }
    /// <summary>The agent's Retry-After (with <see cref="ProblemTypes.Busy"/>).</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>Error details grouped by attribute path.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> ErrorsByAttribute =>
        Errors.GroupBy(e => e.Attribute, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(e => e.Detail)], StringComparer.Ordinal);

    /// <summary>404: the resource does not exist (a provider removes it from state).</summary>
    public bool IsNotFound => Status == HttpStatusCode.NotFound;

    private static string Describe(HttpStatusCode status, Problem problem)
    {
        var head = $"{(int)status} {problem.Title ?? status.ToString()}: {problem.Detail}";
        return problem.Errors is { Count: > 0 } errors
            ? head + string.Concat(errors.Select(e => $"\n  {(e.Attribute.Length == 0 ? "(request)" : e.Attribute)}: {e.Detail}"))
            : head;
    }
}
