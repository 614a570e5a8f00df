using System.Globalization;
using System.Text.Json.Nodes;
using Kvm.Agent.Qemu;
using Kvm.Model;

namespace Kvm.Agent.Vms;

/// <summary>One ballooned VM as the policy sees it (MiB).</summary>
public sealed record BalloonVm(long VmId, long SizeMib, long MinMib, long CurrentMib, int Shares);

/// <summary>
/// Proxmox-style auto-ballooning, as a pure function: while the host uses less than <see cref="Threshold"/> of its
/// memory every VM gets its full size back; above it, the excess is taken from the VMs' balloons (never below their
/// minimum), each VM giving in proportion to what it can give divided by its shares, so a VM with twice the shares
/// gives half as much.
/// </summary>
public static class AutoBalloonPolicy
{
    /// <summary>Host memory use (fraction of total) above which memory is taken back.</summary>
    public const double Threshold = 0.8;

    /// <summary>The balloon target (MiB) per VM.</summary>
    public static IReadOnlyDictionary<long, long> Targets(long hostTotalMib, long hostUsedMib, IReadOnlyList<BalloonVm> vms)
    {
        var targets = vms.ToDictionary(v => v.VmId, v => Math.Clamp(v.CurrentMib, v.MinMib, v.SizeMib));
        var limit = (long)(hostTotalMib * Threshold);
        if (hostUsedMib < limit)
        {
            foreach (var vm in vms.Where(v => v.Shares > 0))
                targets[vm.VmId] = vm.SizeMib;
            return targets;
        }
        var need = hostUsedMib - limit;
        var givers = vms.Where(v => v.Shares > 0).ToList();
        // Hand out the amount by weight; VMs that hit their minimum drop out and the rest is spread again.
        while (need > 0)
        {
            var open = givers.Where(v => targets[v.VmId] > v.MinMib).ToList();
            if (open.Count == 0)
                break;
            var weights = open.ToDictionary(v => v.VmId, v => (double)(targets[v.VmId] - v.MinMib) / v.Shares);
            var total = weights.Values.Sum();
            long taken = 0;
            foreach (var vm in open)
            {
                var room = targets[vm.VmId] - vm.MinMib;
                var take = Math.Min(room, Math.Max(1, (long)Math.Ceiling(need * weights[vm.VmId] / total)));
                take = Math.Min(take, need - taken);
                targets[vm.VmId] -= take;
                taken += take;
                if (taken >= need)
                    break;
            }
            need -= taken;
            if (taken == 0)
                break;
        }
        return targets;
    }
}

/// <summary>
/// The agent's auto-ballooning loop: every <see cref="AgentOptions.AutoBalloonInterval"/> it reads the host's memory use and
/// sets the balloon target (QMP <c>balloon</c>) of each running VM that has a balloon device, a <c>balloon.min_mib</c> below its
/// size and <c>memory.shares</c> set above 0, by <see cref="AutoBalloonPolicy"/>.
/// </summary>
public sealed class AutoBalloon(AgentOptions options, VmStore store, VmRuntime runtime, ILogger<AutoBalloon> logger) : BackgroundService
{
    private const long MiB = 1024 * 1024;

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.AutoBalloonInterval <= TimeSpan.Zero)
            return;
        using var timer = new PeriodicTimer(options.AutoBalloonInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (Exception e) when (e is IOException or TimeoutException or QmpException or FormatException)
            {
                AutoBalloonLog.Failed(logger, e.Message);
            }
        }
    }

    /// <summary>One round: measure, decide, apply. Returns the targets it set (MiB), for tests.</summary>
    public async Task<IReadOnlyDictionary<long, long>> RunOnceAsync(CancellationToken cancellationToken)
    {
        var (total, used) = ReadHostMemory(File.ReadAllText(options.MeminfoPath));
        var vms = new List<BalloonVm>();
        var monitors = new Dictionary<long, VmMonitor>();
        foreach (var stored in store.All)
        {
            var spec = Defaults.Apply(stored.Spec).Memory!;
            if (runtime.MonitorOf(stored.VmId) is not { } monitor || monitor.StartedSpec.Memory?.Balloon?.Enabled != true
                || spec.Shares is not > 0 || spec.Balloon?.MinMib is not { } min || min >= spec.SizeMib!.Value)
                continue;
            var actual = (await monitor.ExecuteAsync("query-balloon", cancellationToken: cancellationToken))?["actual"]?.GetValue<long>() ?? spec.SizeMib.Value * MiB;
            vms.Add(new BalloonVm(stored.VmId, spec.SizeMib.Value, min, actual / MiB, spec.Shares.Value));
            monitors[stored.VmId] = monitor;
        }
        var targets = AutoBalloonPolicy.Targets(total, used, vms);
        foreach (var vm in vms)
        {
            var target = targets[vm.VmId];
            if (Math.Abs(target - vm.CurrentMib) < 16)
                continue; // not worth a guest's effort
            await monitors[vm.VmId].ExecuteAsync("balloon", new JsonObject { ["value"] = target * MiB }, cancellationToken: cancellationToken);
            AutoBalloonLog.TargetSet(logger, vm.VmId, vm.CurrentMib, target, used, total);
        }
        return targets;
    }

    /// <summary>(total, used) MiB from /proc/meminfo; used = MemTotal − MemAvailable.</summary>
    public static (long Total, long Used) ReadHostMemory(string meminfo)
    {
        long Field(string name) => long.Parse(meminfo.Split('\n').Single(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        var total = Field("MemTotal");
        return (total, total - Field("MemAvailable"));
    }
}

internal static partial class AutoBalloonLog
{
    [LoggerMessage(EventId = 6201, Level = LogLevel.Information, Message = "VM {VmId}: balloon {FromMib} → {ToMib} MiB (host uses {UsedMib} of {TotalMib} MiB)")]
    public static partial void TargetSet(ILogger logger, long vmId, long fromMib, long toMib, long usedMib, long totalMib);

    [LoggerMessage(EventId = 6202, Level = LogLevel.Warning, Message = "auto-ballooning round failed: {Reason}")]
    public static partial void Failed(ILogger logger, string reason);
}
