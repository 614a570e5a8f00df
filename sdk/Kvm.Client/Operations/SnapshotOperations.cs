using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

/// <summary>VM snapshots: take (idempotent by name), change the description in place, delete; id <c>vm_id/name</c>.</summary>
public sealed class SnapshotOperations(IAgentClients agents) : ModelOperations<Snapshot, SnapshotSpec>("snapshot_id")
{
    /// <inheritdoc />
    public override async Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        await client.CreateSnapshotAsync(spec.VmId!.Value, spec, cancellationToken).ConfigureAwait(false);
        return ToJson((await client.GetSnapshotAsync(spec.VmId!.Value, spec.Name!, cancellationToken).ConfigureAwait(false)).Value);
    }

    /// <inheritdoc />
    public override async Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken)
    {
        var (vmId, name) = Split(id);
        try
        {
            return ToJson((await agents.For(host).GetSnapshotAsync(vmId, name, cancellationToken).ConfigureAwait(false)).Value);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public override async Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var (vmId, name) = Split(id);
        try
        {
            return ToJson((await agents.For(host).UpdateSnapshotAsync(vmId, name, spec, cancellationToken).ConfigureAwait(false)).Value);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            throw new KvmApiException(HttpStatusCode.NotFound, new Problem { Type = ProblemTypes.NotFound, Title = "Not found", Detail = $"Snapshot \"{id}\" no longer exists." });
        }
    }

    /// <inheritdoc />
    public override async Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken)
    {
        var (vmId, name) = Split(id);
        try
        {
            await agents.For(host).DeleteSnapshotAsync(vmId, name, cancellationToken).ConfigureAwait(false);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            // The VM is gone, and its snapshots with it.
        }
    }

    /// <summary>Splits <c>vm_id/name</c>; anything else is a validation error at <c>snapshot_id</c>.</summary>
    public static (long VmId, string Name) Split(string id)
    {
        var slash = id.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0 && long.TryParse(id.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out var vmId) && slash < id.Length - 1)
            return (vmId, id[(slash + 1)..]);
        throw new ModelValidationException([new ValidationError("snapshot_id", $"\"{id}\" is not a snapshot ID (\"<vm_id>/<name>\").")]);
    }
}
