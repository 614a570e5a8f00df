using Kvm.Agent.Vms;
using Kvm.Model;

namespace Kvm.Agent.Tests.Vms;

/// <summary>Which VMs autostart, in which order, and the agent option for the ordered shutdown.</summary>
public sealed class AutostartOrderTests
{
    private static StoredVm Vm(long id, AutostartSpec? autostart) => new(id, new VmSpec { Name = $"vm{id}", Autostart = autostart }, "e");

    [Fact]
    public void EnabledVmsStartByOrderThenByIdAndVmsWithoutAnOrderLast()
    {
        var vms = new[]
        {
            Vm(100, new AutostartSpec { Enabled = true }),
            Vm(101, new AutostartSpec { Enabled = true, Order = 5 }),
            Vm(102, null),
            Vm(103, new AutostartSpec { Enabled = false, Order = 1 }),
            Vm(104, new AutostartSpec { Enabled = true, Order = 1 }),
            Vm(105, new AutostartSpec { Enabled = true, Order = 5 }),
            Vm(99, new AutostartSpec { Enabled = true }),
        };
        Assert.Equal([104L, 101, 105, 99, 100], Autostart.InStartOrder(vms).Select(v => v.VmId));
    }

    [Fact]
    public void StopVmsOnExitIsOffUnlessAsked()
    {
        Assert.False(AgentOptions.Parse([], _ => null).StopVmsOnExit);
        Assert.True(AgentOptions.Parse(["--stop-vms-on-exit"], _ => null).StopVmsOnExit);
        Assert.Contains("--stop-vms-on-exit", AgentOptions.Usage, StringComparison.Ordinal);
    }
}
