using Kvm.Model;

namespace Kvm.Agent.Vms;

/// <summary>
/// Proxmox's <c>onboot</c>/<c>startup</c>: when the agent starts (with the host), it starts the VMs with
/// <c>autostart.enabled</c> that are not running (and whose <c>power_state</c> is not <c>stopped</c>), one after the
/// other by <c>order</c> (then VM ID), waiting <c>up_delay_seconds</c> after each; in the background, so the API serves
/// meanwhile. With <c>--stop-vms-on-exit</c>, SIGTERM/SIGINT (systemd stopping the unit at host shutdown) first shuts
/// the running autostart VMs down in reverse order, each given <c>down_delay_seconds</c> before it is stopped by force.
/// Without it, VMs outlive the agent as always.
/// </summary>
public sealed class Autostart(AgentOptions options, VmStore store, VmRuntime runtime, VmLocks locks, ILogger<Autostart> logger) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _starting = Task.CompletedTask;

    /// <summary>The autostart VMs in start order.</summary>
    public static IReadOnlyList<StoredVm> InStartOrder(IEnumerable<StoredVm> vms) =>
        [.. vms.Where(v => v.Spec.Autostart?.Enabled == true)
            .OrderBy(v => v.Spec.Autostart!.Order ?? int.MaxValue).ThenBy(v => v.VmId)];

    /// <summary>Starts the autostart VMs in the background (after the VMs were loaded and adopted).</summary>
    public void StartInBackground() => _starting = Task.Run(() => StartAllAsync(_stopping.Token));

    private async Task StartAllAsync(CancellationToken cancellationToken)
    {
        foreach (var candidate in InStartOrder(store.All))
        {
            try
            {
                var delay = 0;
                using (await locks.AcquireAsync(candidate.VmId, cancellationToken))
                {
                    if (store.Find(candidate.VmId) is not { } stored || stored.Spec.Autostart?.Enabled != true || runtime.IsUp(stored.VmId))
                        continue;
                    if (Defaults.Apply(stored.Spec).PowerState == "stopped")
                    {
                        AutostartLog.Skipped(logger, stored.VmId);
                        continue;
                    }
                    await runtime.StartAsync(stored, cancellationToken);
                    delay = stored.Spec.Autostart.UpDelaySeconds ?? 0;
                    AutostartLog.Started(logger, stored.VmId, stored.Spec.Autostart.Order, delay);
                }
                if (delay > 0)
                    await Task.Delay(TimeSpan.FromSeconds(delay), cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                AutostartLog.StartFailed(logger, candidate.VmId, e.Message); // the next VM still starts
            }
        }
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Agent shutdown: stop starting; with <c>--stop-vms-on-exit</c>, shut the autostart VMs down in reverse order.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        try { await _starting; } catch (OperationCanceledException) { }
        if (!options.StopVmsOnExit)
            return;
        foreach (var stored in InStartOrder(store.All).Reverse())
        {
            try
            {
                using var held = await locks.AcquireAsync(stored.VmId, CancellationToken.None);
                if (!runtime.IsUp(stored.VmId))
                    continue;
                var timeout = TimeSpan.FromSeconds(Defaults.Apply(stored.Spec).Autostart!.DownDelaySeconds ?? 60);
                await runtime.ShutdownAsync(stored.VmId, timeout, force: true, CancellationToken.None);
                AutostartLog.ShutDown(logger, stored.VmId);
            }
            catch (Exception e)
            {
                AutostartLog.StopFailed(logger, stored.VmId, e.Message);
            }
        }
    }
}

/// <summary>Log messages of autostart.</summary>
internal static partial class AutostartLog
{
    [LoggerMessage(EventId = 4301, Level = LogLevel.Information, Message = "VM {VmId} autostarted (order {Order}); next start in {Delay} s")]
    public static partial void Started(ILogger logger, long vmId, int? order, int delay);

    [LoggerMessage(EventId = 4302, Level = LogLevel.Warning, Message = "VM {VmId}: autostart failed: {Reason}")]
    public static partial void StartFailed(ILogger logger, long vmId, string reason);

    [LoggerMessage(EventId = 4303, Level = LogLevel.Information, Message = "VM {VmId}: autostart skipped, its power_state is stopped")]
    public static partial void Skipped(ILogger logger, long vmId);

    [LoggerMessage(EventId = 4304, Level = LogLevel.Information, Message = "VM {VmId} shut down as the agent stops (--stop-vms-on-exit)")]
    public static partial void ShutDown(ILogger logger, long vmId);

    [LoggerMessage(EventId = 4305, Level = LogLevel.Warning, Message = "VM {VmId}: shutdown on exit failed: {Reason}")]
    public static partial void StopFailed(ILogger logger, long vmId, string reason);
}
