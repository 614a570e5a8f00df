using System.Globalization;
using Kvm.Model;

namespace Kvm.Client;

public sealed partial class KvmClient
{
    // ── migration (agent to agent; see Operations/VmMigration for the order) ──────────────────────────

    /// <summary>POST /v1/vms/{vm_id}/migration/prepare: the source validates and locks the VM and says what the target must make.</summary>
    public Task<MigrationPlan> PrepareMigrationAsync(long vmId, bool online, CancellationToken cancellationToken = default) =>
        ValueAsync(HttpMethod.Post, Migration(vmId, "prepare"), Body(new MigrationPrepareRequest { Online = online }, MigrationJsonContext.Default.MigrationPrepareRequest),
            null, MigrationJsonContext.Default.MigrationPlan, cancellationToken);

    /// <summary>POST /v1/migrations/incoming on the target: the VM made there, locked, with empty disks exported.</summary>
    public Task<IncomingMigration> CreateIncomingMigrationAsync(MigrationPlan plan, CancellationToken cancellationToken = default) =>
        ValueAsync(HttpMethod.Post, "v1/migrations/incoming", Body(plan, MigrationJsonContext.Default.MigrationPlan), null,
            MigrationJsonContext.Default.IncomingMigration, cancellationToken);

    /// <summary>POST /v1/vms/{vm_id}/migration/send on the source: disks (and memory, live) copied to the target.</summary>
    public Task<MigrationSendResult> SendMigrationAsync(long vmId, IncomingMigration target, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        ValueAsync(HttpMethod.Post, Migration(vmId, "send"),
            Body(new MigrationSendRequest { Target = target, TimeoutSeconds = timeout?.TotalSeconds }, MigrationJsonContext.Default.MigrationSendRequest),
            null, MigrationJsonContext.Default.MigrationSendResult, cancellationToken);

    /// <summary>POST /v1/migrations/incoming/{vm_id}/complete on the target: the VM runs (or is ready) there.</summary>
    public Task<Vm> CompleteIncomingMigrationAsync(long vmId, CancellationToken cancellationToken = default) =>
        ValueAsync(HttpMethod.Post, $"v1/migrations/incoming/{Id(vmId)}/complete", null, null, Json<Vm>(), cancellationToken);

    /// <summary>DELETE /v1/migrations/incoming/{vm_id} on the target: everything made for the incoming VM removed.</summary>
    public Task AbortIncomingMigrationAsync(long vmId, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/migrations/incoming/{Id(vmId)}", null, null, null, cancellationToken);

    /// <summary>POST /v1/vms/{vm_id}/migration/finish on the source: the VM deleted there after the target completed.</summary>
    public Task FinishMigrationAsync(long vmId, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Post, Migration(vmId, "finish"), null, null, null, cancellationToken);

    /// <summary>POST /v1/vms/{vm_id}/migration/cancel on the source: the VM resumed (or started again) and unlocked.</summary>
    public Task CancelMigrationAsync(long vmId, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Post, Migration(vmId, "cancel"), null, null, null, cancellationToken);

    private static string Id(long vmId) => vmId.ToString(CultureInfo.InvariantCulture);

    private static string Migration(long vmId, string step) => $"{Vm(vmId)}/migration/{step}";
}
