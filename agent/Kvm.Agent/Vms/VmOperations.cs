using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Storage;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Agent.Vms;

/// <summary>The answer to a create: the VM read back, and whether this request created it (false: an idempotent replay).</summary>
public sealed record CreateOutcome(Vm Vm, string ETag, bool Created);

/// <summary>
/// Every VM operation the API offers, each under the VM's lock: validate, store, touch the host, read back.
/// A failed create leaves nothing behind; an update applies live what QEMU can and leaves the rest pending.
/// </summary>
public sealed class VmOperations(VmStore store, VmRuntime runtime, VmLocks locks, HostFacts facts, ILogger<VmOperations> logger, IServiceProvider services)
{
    /// <summary>Default bound for a graceful shutdown.</summary>
    public static readonly TimeSpan DefaultShutdownTimeout = TimeSpan.FromSeconds(60);

    private IVmStorage? Storage => services.GetService<IVmStorage>();

    /// <summary>Every VM, from memory.</summary>
    public List<Vm> List() => [.. store.All.OrderBy(v => v.VmId).Select(runtime.Describe)];

    /// <summary>One VM with its ETag, or 404.</summary>
    public (Vm Vm, string ETag) Get(long vmId)
    {
        var stored = store.Get(vmId);
        return (runtime.Describe(stored), stored.ETag);
    }

    /// <summary>
    /// Creates a VM: validate, claim an ID, create inline disks and the EFI variable store, start it unless
    /// <c>power_state</c> says otherwise. Any failure removes exactly what this request created.
    /// The same Idempotency-Key with the same body returns the same VM; with another body, 422.
    /// </summary>
    public async Task<CreateOutcome> CreateAsync(VmSpec spec, string? idempotencyKey, CancellationToken cancellationToken)
    {
        ThrowIfInvalid(Validator.Validate(spec));
        runtime.RequireServices(Defaults.Apply(spec));
        var digest = VmStore.Digest(spec);
        for (var attempt = 0; attempt < 3; attempt++)
        {
            long? replayOf = null;
            StoredVm? stored = null;
            IDisposable? held = null;
            await store.CreateLock.WaitAsync(cancellationToken);
            try
            {
                var record = idempotencyKey is null ? null : store.FindKey(idempotencyKey);
                if (record is not null && record.RequestDigest != digest)
                    throw AgentProblemException.Invalid("", "This Idempotency-Key was used with a different request body; use a new key for a new VM.");
                if (record is not null && store.Find(record.VmId) is not null)
                {
                    replayOf = record.VmId;
                }
                else
                {
                    // A key whose VM was never written (or was rolled back) is retried onto the same ID.
                    stored = store.Create(record is not null && spec.VmId is null ? WithId(spec, record.VmId) : spec);
                    if (idempotencyKey is not null)
                        store.SaveKey(idempotencyKey, new IdempotencyRecord(stored.VmId, digest));
                    held = await locks.AcquireAsync(stored.VmId, cancellationToken);
                }
            }
            finally
            {
                store.CreateLock.Release();
            }
            if (replayOf is { } vmId)
            {
                // Wait for the first request with this key to finish; it may still be starting the VM, or roll it back.
                using (await locks.AcquireAsync(vmId, cancellationToken))
                {
                    if (store.Find(vmId) is { } existing)
                        return new CreateOutcome(runtime.Describe(existing), existing.ETag, false);
                }
                continue;
            }
            using (held)
            {
                await ProvisionAsync(stored!, cancellationToken);
                Log.VmCreated(logger, stored!.VmId, stored.Spec.Name!);
                return new CreateOutcome(runtime.Describe(store.Get(stored.VmId)), stored.ETag, true);
            }
        }
        throw AgentProblemException.Conflict("The VM for this Idempotency-Key keeps being rolled back; retry with a new key.");
    }

    private async Task ProvisionAsync(StoredVm stored, CancellationToken cancellationToken)
    {
        var vmId = stored.VmId;
        var spec = Defaults.Apply(stored.Spec);
        var createdFiles = new List<string>();
        try
        {
            if (spec.Clone is not null && services.GetService<VmClones>() is { } clones)
                createdFiles.AddRange(await clones.CreateDisksAsync(vmId, spec, cancellationToken)); // disk content from the source VM
            if (Storage is { } storage)
            {
                if (spec.Disks is { Count: > 0 })
                    createdFiles.AddRange(await storage.EnsureInlineDisksAsync(vmId, spec, cancellationToken));
                if (spec.Firmware?.Type == "uefi" && await storage.EnsureEfiVarsAsync(spec, facts, store.EfiVarsPath(vmId), cancellationToken))
                    createdFiles.Add(store.EfiVarsPath(vmId));
            }
            if (spec.PowerState != "stopped" && spec.Template != true)
                await runtime.StartAsync(stored, cancellationToken);
        }
        catch (Exception e)
        {
            Log.CreateRolledBack(logger, vmId, e.Message);
            if (runtime.IsUp(vmId))
                await runtime.StopAsync(vmId, CancellationToken.None);
            foreach (var file in createdFiles)
            {
                if (Storage is { } created)
                    await created.DiscardCreatedAsync(file); // a thin logical volume is lvremoved, not unlinked
                else
                    VmRuntime.DeleteIfExists(file);
            }
            await runtime.CleanupAsync(vmId, spec);
            runtime.RemoveFiles(vmId);
            store.Delete(vmId);
            throw;
        }
    }

    /// <summary>
    /// Replaces a VM's spec. A stale If-Match is 412; create-only changes are 409 requires-replacement; live changes
    /// are applied to a running VM, the rest stay pending until its next start. The power state is enforced.
    /// </summary>
    public async Task<(VmUpdateResult Result, string ETag)> UpdateAsync(long vmId, VmSpec spec, string? ifMatch, TimeSpan shutdownTimeout, CancellationToken cancellationToken)
    {
        ThrowIfInvalid(Validator.Validate(spec));
        spec.VmId ??= vmId;
        using var held = await locks.AcquireAsync(vmId, cancellationToken);
        var current = store.Get(vmId);
        // A read-modify-write client sends back the fingerprints GET gave it: those keep the stored secrets.
        Secrets.Unredact(spec, current.Spec);
        if (ifMatch is not null && ifMatch != "*" && !ifMatch.Split(',').Select(t => t.Trim()).Contains(current.ETag, StringComparer.Ordinal))
            throw new AgentProblemException(412, ProblemTypes.StaleEtag, "Stale ETag",
                $"VM {vmId} changed since it was read (If-Match {ifMatch}, current {current.ETag}); read it again and retry.");
        var changes = Changes.Classify(current.Spec, spec);
        var replace = changes.Where(c => c.Kind == UpdateKind.Replace).ToList();
        if (replace.Count > 0)
            throw new AgentProblemException(409, ProblemTypes.RequiresReplacement, "Requires replacement",
                $"These settings can only be set when the VM is created: {string.Join(", ", replace.Select(c => c.Attribute))}. Delete and re-create the VM to change them.",
                [.. replace.Select(c => new ProblemError(c.Attribute, "can only be set at create; changing it re-creates the VM."))]);
        ThrowIfInvalid(spec.ValidateUpdate(current.Spec));
        runtime.RequireServices(Defaults.Apply(spec));

        var stored = current;
        if (!VmStore.Serialize(current.Spec).AsSpan().SequenceEqual(VmStore.Serialize(spec)))
        {
            if (spec.Name != current.Spec.Name)
            {
                await store.CreateLock.WaitAsync(cancellationToken);
                try
                {
                    if (store.FindByName(spec.Name!) is { } other && other.VmId != vmId)
                        throw AgentProblemException.Conflict($"A VM named \"{spec.Name}\" exists already (vm_id {other.VmId}).");
                    stored = store.Replace(vmId, spec);
                }
                finally
                {
                    store.CreateLock.Release();
                }
            }
            else
            {
                stored = store.Replace(vmId, spec);
            }
        }

        var outcomes = new List<AppliedChange>();
        var failed = new List<string>();
        var up = runtime.IsUp(vmId);
        foreach (var change in changes)
        {
            string outcome;
            if (change.Attribute is "power_state" or "template")
                outcome = AppliedChange.Live; // enforced below (a template is stopped)
            else if (!up)
            {
                outcome = AppliedChange.Stored;
                if (AttrPath.Parse(change.Attribute).Steps is [{ Name: "disks" }, { Name: { } slot }] && spec.Disks?.ContainsKey(slot) != true)
                    await runtime.RemoveDroppedInlineDiskAsync(vmId, current.Spec, slot, cancellationToken);
            }
            else if (change.Kind == UpdateKind.Live && await runtime.ApplyLiveAsync(vmId, change.Attribute, current.Spec, spec, cancellationToken))
                outcome = AppliedChange.Live;
            else
            {
                outcome = AppliedChange.Pending;
                if (change.Kind == UpdateKind.Live)
                    failed.Add(change.Attribute);
            }
            outcomes.Add(new AppliedChange(change.Attribute, outcome));
        }
        runtime.RecomputePending(stored, failed);
        await EnforcePowerStateAsync(stored, shutdownTimeout, cancellationToken);
        if (outcomes.Count > 0)
            Log.VmUpdated(logger, vmId, string.Join(", ", outcomes.Select(o => $"{o.Attribute}={o.Outcome}")));
        return (new VmUpdateResult(runtime.Describe(stored), outcomes), stored.ETag);
    }

    private async Task EnforcePowerStateAsync(StoredVm stored, TimeSpan shutdownTimeout, CancellationToken cancellationToken)
    {
        var vmId = stored.VmId;
        var effective = Defaults.Apply(stored.Spec);
        switch (effective.Template == true ? "stopped" : effective.PowerState)
        {
            case "running" or "paused" when !runtime.IsUp(vmId):
                await runtime.StartAsync(stored, cancellationToken);
                break;
            case "running" when runtime.StatusOf(vmId) == VmStatus.Paused:
                await runtime.ResumeAsync(vmId, cancellationToken);
                break;
            case "paused" when runtime.StatusOf(vmId) == VmStatus.Running:
                await runtime.SuspendAsync(vmId, cancellationToken);
                break;
            case "stopped" when runtime.IsUp(vmId):
                await runtime.ShutdownAsync(vmId, shutdownTimeout, force: true, cancellationToken);
                break;
        }
    }

    /// <summary>
    /// Deletes a VM and what belongs to it (inline disks, EFI variable store, run directory, taps, logs). A protected VM
    /// is never deleted; a running one only with <paramref name="force"/> (stop now) or <paramref name="stop"/> (graceful, bounded, then stop).
    /// </summary>
    public async Task DeleteAsync(long vmId, bool force, bool stop, TimeSpan shutdownTimeout, CancellationToken cancellationToken)
    {
        using var held = await locks.AcquireAsync(vmId, cancellationToken);
        await DeleteHeldAsync(vmId, force, stop, shutdownTimeout, cancellationToken);
    }

    /// <summary>
    /// <see cref="DeleteAsync"/> for a caller that holds the VM's lock already. <paramref name="migratedAway"/>: the VM
    /// now lives on another host (a finished migration), so protection does not keep this copy.
    /// </summary>
    public async Task DeleteHeldAsync(long vmId, bool force, bool stop, TimeSpan shutdownTimeout, CancellationToken cancellationToken, bool migratedAway = false)
    {
        var stored = store.Get(vmId);
        var spec = Defaults.Apply(stored.Spec);
        if (spec.Protection == true && !migratedAway)
            throw new AgentProblemException(409, ProblemTypes.Protected, "Protected",
                $"VM {vmId} has protection on; set protection = false first.");
        services.GetService<VmClones>()?.RefuseDeleteWhileLinked(vmId);
        if (runtime.IsUp(vmId))
        {
            if (force)
                await runtime.StopAsync(vmId, cancellationToken);
            else if (stop)
                await runtime.ShutdownAsync(vmId, shutdownTimeout, force: true, cancellationToken);
            else
                throw AgentProblemException.InvalidState($"VM {vmId} is {runtime.StatusOf(vmId)}; stop it first, or delete with ?stop=true (graceful, then forced) or ?force=true.");
        }
        // Snapshots live in the images: inline disks take theirs along, volumes get theirs deleted.
        if (services.GetService<Snapshots.VmSnapshots>() is { } snapshots)
            await snapshots.ForgetVmAsync(vmId, spec, cancellationToken);
        if (Storage is { } storage && spec.Disks is { Count: > 0 })
            await storage.RemoveInlineDisksAsync(vmId, spec, cancellationToken);
        await runtime.CleanupAsync(vmId, spec);
        runtime.RemoveFiles(vmId);
        store.Delete(vmId);
        Log.VmDeleted(logger, vmId);
    }

    /// <summary>Runs a power action under the VM's lock and reads the VM back.</summary>
    public async Task<Vm> ActAsync(long vmId, Func<StoredVm, Task> action, CancellationToken cancellationToken)
    {
        using var held = await locks.AcquireAsync(vmId, cancellationToken);
        var stored = store.Get(vmId);
        await action(stored);
        return runtime.Describe(store.Get(vmId));
    }

    /// <summary>Reboot: a graceful shutdown (bounded, then forced) and a start, so pending changes take effect.</summary>
    public async Task RebootAsync(StoredVm stored, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!runtime.IsUp(stored.VmId))
            throw AgentProblemException.InvalidState($"VM {stored.VmId} is not running.");
        await runtime.ShutdownAsync(stored.VmId, timeout, force: true, cancellationToken);
        await runtime.StartAsync(stored, cancellationToken);
    }

    private static VmSpec WithId(VmSpec spec, long vmId)
    {
        var copy = VmStore.Deserialize(VmStore.Serialize(spec));
        copy.VmId = vmId;
        return copy;
    }

    private static void ThrowIfInvalid(IReadOnlyList<ValidationError> errors)
    {
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
    }
}
