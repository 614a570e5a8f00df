using System.Text.Json.Nodes;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Vms;

/// <summary>
/// Live changes and the running spec: every change applied to the running QEMU is written into the monitor's running
/// spec and the run directory's <c>spec.json</c>, so pending changes (also after an agent restart, which reads the file
/// back) are computed against what the QEMU really has. Also USB hot-plug and the watchdog action.
/// </summary>
public sealed partial class VmRuntime
{
    /// <summary>Applies one live-kind change to the running QEMU; false when it cannot (it then waits for the next start).</summary>
    public async Task<bool> ApplyLiveAsync(long vmId, string attribute, VmSpec before, VmSpec after, CancellationToken cancellationToken)
    {
        if (!await ApplyLiveCoreAsync(vmId, attribute, before, after, cancellationToken))
            return false;
        if (MonitorOf(vmId) is { } monitor)
            RecordRunning(monitor, vmId, attribute, after);
        return true;
    }

    /// <summary>USB hot-plug and the watchdog action; null for attributes this file does not handle.</summary>
    private async Task<bool?> ApplyDeviceLiveAsync(VmMonitor monitor, long vmId, string attribute, VmSpec after, CancellationToken cancellationToken)
    {
        var steps = AttrPath.Parse(attribute).Steps;
        switch (steps)
        {
            case [{ Name: "usb_devices" }, { Kind: PathStepKind.Key, Name: { } slot }]:
                return await HotplugUsbAsync(monitor, vmId, slot, after, cancellationToken);
            case [{ Name: "watchdog" }, { Name: "action" }]:
                if (monitor.StartedSpec.Watchdog is null || Defaults.Apply(after).Watchdog is not { } watchdog)
                    return false; // no watchdog in the running QEMU: it comes with the next start
                await monitor.ExecuteAsync("watchdog-set-action", new JsonObject { ["action"] = watchdog.Action }, cancellationToken: cancellationToken);
                LiveLog.WatchdogAction(logger, vmId, watchdog.Action!);
                return true;
            default:
                return null;
        }
    }

    /// <summary>
    /// Adds or removes one USB entry: the same <c>usb-host</c>/<c>usb-redir</c> (and its spicevmc chardev) a cold start gives
    /// the slot, at its fixed port of the running qemu-xhci controller; removal is device_del (USB needs no guest consent).
    /// </summary>
    private async Task<bool> HotplugUsbAsync(VmMonitor monitor, long vmId, string slot, VmSpec after, CancellationToken cancellationToken)
    {
        var running = monitor.StartedSpec;
        if (!running.HasUsbController())
            return false; // the controller comes with the next start
        var present = running.UsbDevices?.ContainsKey(slot) == true;
        if (Defaults.Apply(after).UsbDevices?.GetValueOrDefault(slot) is { } usb)
        {
            if (present)
                return true;
            // As at a start: the device must exist on this host (QEMU itself would take it and wait for it).
            RequireHostDevices(new VmSpec { UsbDevices = new(StringComparer.Ordinal) { [slot] = usb } });
            var device = QemuCommand.DeviceArgsOf(after, facts, PathsFor(vmId), slot);
            if (!device.Ok)
                throw AgentProblemException.Validation(device.Errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
            await PlugPairsAsync(monitor, device.Pairs, cancellationToken);
            Log.DevicePlugged(logger, vmId, slot);
            return true;
        }
        if (!present)
            return true;
        if (!await DeleteDeviceAsync(monitor, slot, cancellationToken))
            return false;
        if (running.UsbDevices![slot].IsSpice())
            await IgnoreMissingAsync(monitor.ExecuteAsync("chardev-remove", new JsonObject { ["id"] = slot + "-redir" }, cancellationToken: cancellationToken));
        Log.DeviceUnplugged(logger, vmId, slot);
        return true;
    }

    /// <summary>
    /// Copies <paramref name="attribute"/>'s effective value (or its absence) from <paramref name="after"/> into the running
    /// spec and its file. <c>hotplug</c> is a policy, not hardware (the spare root ports stay what the QEMU started with):
    /// it is not copied, and pending changes are judged by the stored one.
    /// </summary>
    private void RecordRunning(VmMonitor monitor, long vmId, string attribute, VmSpec after)
    {
        var steps = AttrPath.Parse(attribute).Steps;
        if (steps.Count == 0 || steps[0].Name is "hotplug" or "power_state" or "template")
            return;
        var running = JsonNode.Parse(VmStore.Serialize(monitor.StartedSpec))!.AsObject();
        var source = JsonNode.Parse(VmStore.Serialize(Defaults.Apply(after)));
        // A list element is copied as the whole list.
        var length = steps.TakeWhile(s => s.Kind != PathStepKind.Index).Count();
        JsonNode? from = source;
        var to = running;
        for (var i = 0; i < length; i++)
        {
            var name = steps[i].Name!;
            from = (from as JsonObject)?[name];
            if (i == length - 1)
            {
                if (from is null)
                    to.Remove(name);
                else
                    to[name] = from.DeepClone();
                break;
            }
            if (to[name] is not JsonObject next)
            {
                if (from is null)
                    break; // absent on both sides below here
                to[name] = next = new JsonObject();
            }
            to = next;
        }
        var updated = VmStore.Deserialize(System.Text.Encoding.UTF8.GetBytes(running.ToJsonString()));
        monitor.StartedSpec = updated;
        var runDir = RunDirOf(vmId);
        if (Directory.Exists(runDir))
            Durable.WriteAtomically(Path.Combine(runDir, "spec.json"), VmStore.Serialize(updated));
    }

    /// <summary>
    /// On adoption: the online vCPUs and the memory size as QEMU reports them (query-cpus-fast, query-memory-size-summary)
    /// replace the running spec's, which an older agent may have left at their start values.
    /// </summary>
    private async Task ReadBackRunningAsync(VmMonitor monitor, long vmId, CancellationToken cancellationToken)
    {
        try
        {
            var vcpus = (await monitor.ExecuteAsync("query-cpus-fast", cancellationToken: cancellationToken) as JsonArray)?.Count ?? 0;
            var summary = await monitor.ExecuteAsync("query-memory-size-summary", cancellationToken: cancellationToken);
            var mib = ((summary?["base-memory"]?.GetValue<long>() ?? 0) + (summary?["plugged-memory"]?.GetValue<long>() ?? 0)) / MiB;
            var running = VmStore.Deserialize(VmStore.Serialize(monitor.StartedSpec));
            var changed = false;
            if (vcpus > 0 && running.Cpu is { } cpu && (cpu.Vcpus ?? cpu.MaxVcpus) != vcpus)
                (cpu.Vcpus, changed) = (vcpus, true);
            if (mib > 0 && running.Memory is { } memory && memory.SizeMib != mib)
                (memory.SizeMib, changed) = (mib, true);
            if (!changed)
                return;
            monitor.StartedSpec = running;
            if (Directory.Exists(RunDirOf(vmId)))
                Durable.WriteAtomically(Path.Combine(RunDirOf(vmId), "spec.json"), VmStore.Serialize(running));
        }
        catch (Exception e) when (e is QmpException or IOException or TimeoutException)
        {
            Log.LiveChangeFailed(logger, vmId, "running spec read-back", e.Message);
        }
    }

    /// <summary>The running spec as pending changes judge it: with the stored <c>hotplug</c> policy (see <see cref="RecordRunning"/>).</summary>
    private static VmSpec RunningForPending(VmSpec running, VmSpec stored)
    {
        var copy = VmStore.Deserialize(VmStore.Serialize(running));
        copy.Hotplug = stored.Hotplug is null ? null : [.. stored.Hotplug];
        return copy;
    }
}

internal static partial class LiveLog
{
    [LoggerMessage(EventId = 6701, Level = LogLevel.Information, Message = "VM {VmId}: watchdog action now {Action}")]
    public static partial void WatchdogAction(ILogger logger, long vmId, string action);
}
