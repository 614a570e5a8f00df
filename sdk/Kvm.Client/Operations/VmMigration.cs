using System.Text.Json.Nodes;
using Kvm.Model;

namespace Kvm.Client.Operations;

/// <summary>The VM was copied and runs on the target, but deleting it on the source failed: it exists on both until someone deletes the source copy.</summary>
public sealed class MigrationSourceCleanupException(long vmId, Exception inner)
    : Exception($"VM {vmId} was migrated and runs on the new host, but deleting it on the old host failed: {inner.Message}. " +
        "The old copy is paused and locked there; delete it with the agent API (POST /v1/vms/{vm_id}/migration/finish) or restart that agent and delete it.", inner)
{
    /// <summary>The VM.</summary>
    public long VmId { get; } = vmId;
}

/// <summary>
/// Moves a VM from one agent to another, in the one order that never loses it: source prepares (locks) → target makes the
/// VM incoming → source sends → target completes → source deletes its copy. Any failure before the target completed
/// aborts the target and gives the VM back to the source (resumed as it was).
/// </summary>
public static class VmMigration
{
    /// <summary>Migrates VM <paramref name="vmId"/>; returns the VM as the target reads it back.</summary>
    public static async Task<Vm> MigrateAsync(KvmClient source, KvmClient target, long vmId, bool online, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        var plan = await source.PrepareMigrationAsync(vmId, online, cancellationToken).ConfigureAwait(false);
        Vm moved;
        try
        {
            var incoming = await target.CreateIncomingMigrationAsync(plan, cancellationToken).ConfigureAwait(false);
            await source.SendMigrationAsync(vmId, incoming, timeout, cancellationToken).ConfigureAwait(false);
            moved = await target.CompleteIncomingMigrationAsync(vmId, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Cleanup must run even when the caller's token fired: bounded by its own time.
            using var cleanup = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            // Also when the answer to the incoming request was lost: abort touches only an incoming migration of this VM.
            await Quietly(() => target.AbortIncomingMigrationAsync(vmId, cleanup.Token)).ConfigureAwait(false);
            await Quietly(() => source.CancelMigrationAsync(vmId, cleanup.Token)).ConfigureAwait(false);
            if (e is KvmApiException or HttpRequestException or OperationCanceledException)
                throw;
            throw new InvalidOperationException($"Migrating VM {vmId} failed: {e.Message}", e);
        }
        try
        {
            await source.FinishMigrationAsync(vmId, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is KvmApiException or HttpRequestException or OperationCanceledException)
        {
            throw new MigrationSourceCleanupException(vmId, e);
        }
        return moved;
    }

    private static async Task Quietly(Func<Task> step)
    {
        try
        {
            await step().ConfigureAwait(false);
        }
        catch (Exception e) when (e is KvmApiException or HttpRequestException or OperationCanceledException)
        {
            // Best effort: the error the caller sees is the one that stopped the migration.
        }
    }
}

/// <summary>A resource that can move between hosts in place (the VM, with <c>migration.enabled</c>) instead of being replaced.</summary>
public interface IMovableOperations
{
    /// <summary>True when <paramref name="config"/> asks for a host change to move the resource rather than replace it.</summary>
    bool MovesOnHostChange(JsonObject config);

    /// <summary>
    /// Moves the resource from <paramref name="fromHost"/> to <paramref name="toHost"/>, then applies <paramref name="config"/> there
    /// and returns it read back from <paramref name="toHost"/>. A failure before the move completed leaves it on <paramref name="fromHost"/>.
    /// </summary>
    Task<JsonObject> MoveAsync(string fromHost, string toHost, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken);
}
