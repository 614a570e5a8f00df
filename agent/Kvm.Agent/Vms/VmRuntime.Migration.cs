using System.Diagnostics;
using Kvm.Model;

namespace Kvm.Agent.Vms;

public sealed partial class VmRuntime
{
    /// <summary>
    /// Starts a migration target's QEMU: the VM's normal start (admission, storage, taps, argv, QMP) with
    /// <c>-incoming defer</c>, so it waits paused for the source's state. The caller holds the VM's lock.
    /// </summary>
    public async Task StartIncomingAsync(StoredVm stored, CancellationToken cancellationToken)
    {
        var vmId = stored.VmId;
        if (MonitorOf(vmId) is not null)
            throw Problems.AgentProblemException.InvalidState($"VM {vmId} has a QEMU already.");
        var clock = Stopwatch.StartNew();
        var spec = Defaults.Apply(stored.Spec);
        RequireServices(spec);
        RequireHostDevices(spec);
        Admit(vmId, spec);
        try
        {
            await LaunchAsync(vmId, stored.Spec, spec, clock, cancellationToken, incoming: true);
        }
        finally
        {
            lock (_admission)
                _reservedMib.Remove(vmId);
        }
    }
}
