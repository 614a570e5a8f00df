using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

/// <summary>
/// The VM lifecycle both plugins use: idempotent create, updates that honour <c>update_policy</c>,
/// drift of the power state on read, graceful delete. Every write is followed by a read-back.
/// </summary>
public sealed partial class VmOperations(IAgentClients agents) : ModelOperations<Vm, VmSpec>("vm_id")
{
    private const int DefaultShutdownSeconds = 120;

    /// <inheritdoc />
    public override async Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        // One key for every attempt: a retry after a lost response returns the VM the first attempt made.
        var key = Guid.NewGuid().ToString("N");
        var created = await Retry.TransientAsync(() => client.CreateVmAsync(spec, key, cancellationToken), cancellationToken).ConfigureAwait(false);
        var vmId = created.Value.VmId!.Value;
        try
        {
            // wait_for_ip: on create (and start), never on read.
            if (created.Value.Status == "running")
                await IpWait.WaitAsync(client, vmId, spec, cancellationToken).ConfigureAwait(false);
            return WithSecrets(ToJson((await client.GetVmAsync(vmId, cancellationToken).ConfigureAwait(false)).Value), config);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var current = created.Value;
            if (e is WaitForIpTimeoutException)
            {
                try { current = (await client.GetVmAsync(vmId, cancellationToken).ConfigureAwait(false)).Value; }
                catch (Exception again) when (again is KvmApiException or HttpRequestException) { }
            }
            throw new PartialCreateException(ToJson(current), e);
        }
    }

    /// <inheritdoc />
    public override async Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken)
    {
        var vm = await agents.For(host).FindVmAsync(VmId(id), cancellationToken).ConfigureAwait(false);
        return vm is null ? null : ToJson(WithObservedPowerState(vm));
    }

    /// <summary>
    /// The VM with <c>power_state</c> set to what was observed when that disagrees with what is
    /// desired (a VM stopped or crashed behind the tool's back): the next plan shows the change and
    /// the apply enforces the desired state.
    /// </summary>
    public static Vm WithObservedPowerState(Vm vm)
    {
        var desired = vm.Template == true ? "stopped" : vm.PowerState ?? "running"; // a template is never started
        var observed = vm.Status switch
        {
            "running" => "running",
            "paused" => "paused",
            "stopped" or "crashed" => "stopped",
            _ => null,
        };
        if (observed is not null && observed != desired)
            vm.PowerState = observed;
        return vm;
    }

    /// <inheritdoc />
    public override async Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        var client = agents.For(host);
        var vmId = VmId(id);
        spec.VmId ??= vmId;
        for (var attempt = 0; ; attempt++)
        {
            var current = await client.GetVmAsync(vmId, cancellationToken).ConfigureAwait(false);
            var vm = current.Value;
            ThrowIfInvalid(spec.ValidateUpdate(vm));
            var restart = Changes.Classify(vm.ToSpec(), spec).Where(c => c.Kind == UpdateKind.Restart).Select(c => c.Attribute).ToList();
            var running = vm.Status is "running" or "paused";
            var policy = spec.UpdatePolicy?.Restart ?? "auto";
            var timeout = TimeSpan.FromSeconds(spec.UpdatePolicy?.ShutdownTimeoutSeconds ?? DefaultShutdownSeconds);
            if (restart.Count > 0 && running && policy == "fail")
            {
                throw new ModelValidationException([.. restart.Select(a => new ValidationError(a,
                    $"needs a restart of the running VM, and update_policy.restart is \"fail\" (nothing was changed). Stop the VM first, or set update_policy.restart to \"auto\" or \"never\"."))]);
            }
            Versioned<VmUpdateResult> updated;
            try
            {
                updated = await client.UpdateVmAsync(vmId, spec, current.ETag, timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (KvmApiException e) when (e.Status == HttpStatusCode.PreconditionFailed && attempt < 3)
            {
                continue;
            }
            var pending = updated.Value.Changes.Any(c => c.Outcome == AppliedChange.Pending);
            if (pending && running && policy == "auto" && updated.Value.Vm.Status is "running" or "paused")
                await client.RebootVmAsync(vmId, timeout, cancellationToken).ConfigureAwait(false);
            // The update started a stopped VM (power_state): wait_for_ip applies, as after a create.
            if (!running && updated.Value.Vm.Status == "running")
                await IpWait.WaitAsync(client, vmId, spec, cancellationToken).ConfigureAwait(false);
            return WithSecrets(ToJson((await client.GetVmAsync(vmId, cancellationToken).ConfigureAwait(false)).Value), config);
        }
    }

    /// <summary>
    /// The read-back with the clear values of <paramref name="known"/> where the agent answered their fingerprints,
    /// so state holds what the user wrote and the next plan is empty; a fingerprint that does not match stays (drift).
    /// </summary>
    public static JsonObject WithSecrets(JsonObject readBack, JsonObject? known)
    {
        Secrets.Restore(readBack, known, Schemas.For<Vm>());
        return readBack;
    }

    /// <inheritdoc />
    public override async Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken)
    {
        var seconds = prior["update_policy"]?["shutdown_timeout_seconds"]?.GetValue<long>() ?? DefaultShutdownSeconds;
        try
        {
            await agents.For(host).DeleteVmAsync(VmId(id), RunningVmDeletion.ShutDown, TimeSpan.FromSeconds(seconds), cancellationToken).ConfigureAwait(false);
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            // Already gone is what delete wants.
        }
    }

    private static long VmId(string id) =>
        long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var vmId) ? vmId
            : throw new ModelValidationException([new ValidationError("vm_id", $"\"{id}\" is not a VM ID (a number).")]);
}

/// <summary>Retries for calls that are safe to repeat (idempotency keys, reads).</summary>
internal static class Retry
{
    public static async Task<T> TransientAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (HttpRequestException) when (attempt < 3 && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), cancellationToken).ConfigureAwait(false);
            }
            catch (KvmApiException e) when (attempt < 5 && e.Type == ProblemTypes.Busy)
            {
                await Task.Delay(e.RetryAfter ?? TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
