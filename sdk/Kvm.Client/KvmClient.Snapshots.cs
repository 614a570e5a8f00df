using System.Globalization;
using Kvm.Model;

namespace Kvm.Client;

public sealed partial class KvmClient
{
    // ── snapshots ─────────────────────────────────────────────────────────────────────────────────────

    /// <summary>GET /v1/vms/{vm_id}/snapshots, oldest first.</summary>
    public async Task<IReadOnlyList<Snapshot>> ListSnapshotsAsync(long vmId, CancellationToken cancellationToken = default) =>
        await ValueAsync(HttpMethod.Get, Snapshots(vmId), null, null, Json<List<Snapshot>>(), cancellationToken);

    /// <summary>POST /v1/vms/{vm_id}/snapshots: takes it (201), or returns the existing one of that name and kind (200).</summary>
    public Task<Versioned<Snapshot>> CreateSnapshotAsync(long vmId, SnapshotSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, Snapshots(vmId), Body(spec, ModelJsonContext.Default.SnapshotSpec), null, Json<Snapshot>(), cancellationToken)!;

    /// <summary>GET /v1/vms/{vm_id}/snapshots/{name}.</summary>
    public Task<Versioned<Snapshot>> GetSnapshotAsync(long vmId, string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, Snapshots(vmId, name), null, null, Json<Snapshot>(), cancellationToken)!;

    /// <summary>PUT /v1/vms/{vm_id}/snapshots/{name}: the description changes in place; the rest is create-only (409).</summary>
    public Task<Versioned<Snapshot>> UpdateSnapshotAsync(long vmId, string name, SnapshotSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, Snapshots(vmId, name), Body(spec, ModelJsonContext.Default.SnapshotSpec), null, Json<Snapshot>(), cancellationToken)!;

    /// <summary>DELETE /v1/vms/{vm_id}/snapshots/{name} (a snapshot that does not exist is success).</summary>
    public Task DeleteSnapshotAsync(long vmId, string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, Snapshots(vmId, name), null, null, null, cancellationToken);

    /// <summary>
    /// POST /v1/vms/{vm_id}/snapshots/{name}/rollback. <paramref name="start"/>: run the VM afterwards (default: a memory snapshot
    /// runs on; a disks-only rollback starts the VM again when it was running).
    /// </summary>
    public async Task<Vm> RollbackSnapshotAsync(long vmId, string name, bool? start = null, CancellationToken cancellationToken = default) =>
        await ValueAsync(HttpMethod.Post, Snapshots(vmId, name) + "/rollback" + Query(("start", start is { } s ? (s ? "true" : "false") : null)),
            null, null, Json<Vm>(), cancellationToken);

    private static string Snapshots(long vmId, string? name = null) =>
        $"v1/vms/{vmId.ToString(CultureInfo.InvariantCulture)}/snapshots" + (name is null ? "" : "/" + Uri.EscapeDataString(name));
}
