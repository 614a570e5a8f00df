using System.Text.Json.Serialization;

namespace Kvm.Model;

/// <summary>How one changed setting of an update was handled by the agent.</summary>
public sealed record AppliedChange(
    [property: JsonPropertyName("attribute")] string Attribute,
    [property: JsonPropertyName("outcome")] string Outcome)
{
    /// <summary>Applied to the running VM.</summary>
    public const string Live = "live";
    /// <summary>Stored; takes effect at the next start.</summary>
    public const string Pending = "pending";
    /// <summary>Stored; the VM was not running, so it applies at start.</summary>
    public const string Stored = "stored";
}

/// <summary>The answer to <c>PUT /v1/vms/{vm_id}</c>: the VM read back, and what happened to each change.</summary>
public sealed record VmUpdateResult(
    [property: JsonPropertyName("vm")] Vm Vm,
    [property: JsonPropertyName("changes")] IReadOnlyList<AppliedChange> Changes);

/// <summary>One entry of a problem's <c>errors</c> list.</summary>
public sealed record ProblemError(
    [property: JsonPropertyName("attribute")] string Attribute,
    [property: JsonPropertyName("detail")] string Detail);

/// <summary>RFC 9457 problem details as the agent sends them.</summary>
public sealed record Problem
{
    /// <summary>Stable type URI (see <see cref="ProblemTypes"/>).</summary>
    [JsonPropertyName("type")] public string? Type { get; init; }
    /// <summary>Short summary.</summary>
    [JsonPropertyName("title")] public string? Title { get; init; }
    /// <summary>HTTP status.</summary>
    [JsonPropertyName("status")] public int? Status { get; init; }
    /// <summary>What happened, for people.</summary>
    [JsonPropertyName("detail")] public string? Detail { get; init; }
    /// <summary>The request path.</summary>
    [JsonPropertyName("instance")] public string? Instance { get; init; }
    /// <summary>Validation errors keyed by attribute path.</summary>
    [JsonPropertyName("errors")] public IReadOnlyList<ProblemError>? Errors { get; init; }
}

/// <summary>The stable problem <c>type</c> URIs of the agent API.</summary>
public static class ProblemTypes
{
    private const string Base = "https://kvm.dev/problems/";
    /// <summary>Input failed validation; see <c>errors</c>.</summary>
    public const string Validation = Base + "validation";
    /// <summary>The request body is not valid JSON or has wrong types.</summary>
    public const string MalformedBody = Base + "malformed-body";
    /// <summary>No such resource.</summary>
    public const string NotFound = Base + "not-found";
    /// <summary>The resource exists already (name or id taken).</summary>
    public const string Conflict = Base + "conflict";
    /// <summary>Another operation holds the resource; retry.</summary>
    public const string Busy = Base + "busy";
    /// <summary>If-Match did not match the current ETag.</summary>
    public const string StaleEtag = Base + "stale-etag";
    /// <summary>The operation is not allowed in the resource's current state.</summary>
    public const string InvalidState = Base + "invalid-state";
    /// <summary>The change needs the resource re-created.</summary>
    public const string RequiresReplacement = Base + "requires-replacement";
    /// <summary>Protection is on.</summary>
    public const string Protected = Base + "protected";
    /// <summary>The host lacks CPU or memory for the VM.</summary>
    public const string Admission = Base + "admission";
    /// <summary>A host command failed (qemu-img, qemu, ip).</summary>
    public const string HostCommandFailed = Base + "host-command-failed";
    /// <summary>No space left on the device.</summary>
    public const string NoSpace = Base + "no-space";
    /// <summary>Missing or wrong bearer token.</summary>
    public const string Unauthorized = Base + "unauthorized";
    /// <summary>The request body is too large.</summary>
    public const string TooLarge = Base + "too-large";
    /// <summary>An unexpected failure inside the agent.</summary>
    public const string Internal = Base + "internal";
}

/// <summary>Every resource and data source, for the projections.</summary>
public static class Catalog
{
    /// <summary>Managed resources (Terraform resources, Pulumi resources).</summary>
    public static IReadOnlyList<Type> Resources { get; } = [typeof(Vm), typeof(Volume), typeof(Image), typeof(StoragePool), typeof(Network), typeof(Snapshot)];

    /// <summary>Data sources (Terraform data sources, Pulumi functions) and the type they return.</summary>
    public static IReadOnlyList<Type> DataSources { get; } = [typeof(HostInfo), typeof(Vm), typeof(VmAddresses)];
}
