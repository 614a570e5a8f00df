using System.Collections.Concurrent;
using Kvm.Agent.Problems;
using Kvm.Model;

namespace Kvm.Agent.Vms;

/// <summary>
/// One async lock per VM: operations on a VM run one at a time. A request that cannot get the lock within
/// <see cref="AgentOptions.LockWait"/> gets 409 busy with Retry-After instead of queueing without bound.
/// </summary>
public sealed class VmLocks(AgentOptions options)
{
    private readonly ConcurrentDictionary<long, SemaphoreSlim> _locks = new();

    /// <summary>Takes the VM's lock; dispose the result to release it.</summary>
    public async Task<IDisposable> AcquireAsync(long vmId, CancellationToken cancellationToken)
    {
        var gate = _locks.GetOrAdd(vmId, _ => new SemaphoreSlim(1, 1));
        if (!await gate.WaitAsync(options.LockWait, cancellationToken))
            throw new AgentProblemException(409, ProblemTypes.Busy, "Busy",
                $"Another operation on VM {vmId} is still running; retry shortly.");
        return new Releaser(gate);
    }

    private sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                gate.Release();
        }
    }
}
