using Kvm.Agent.Vms;

namespace Kvm.Agent.Tests.Vms;

/// <summary>The auto-ballooning policy (memory.shares), a pure function.</summary>
public sealed class AutoBalloonPolicyTests
{
    [Fact]
    public void BelowEightyPercentEveryVmGetsItsFullSize()
    {
        var targets = AutoBalloonPolicy.Targets(10_000, 7_999, [new(1, 2048, 512, 1000, 1000), new(2, 4096, 1024, 1024, 1)]);
        Assert.Equal(2048, targets[1]);
        Assert.Equal(4096, targets[2]);
    }

    [Fact]
    public void AboveEightyPercentTheExcessIsTakenByRoomOverShares()
    {
        // 1000 MiB over the line; both have 1000 MiB of room, B has three times A's shares: A gives 750, B 250.
        var targets = AutoBalloonPolicy.Targets(10_000, 9_000, [new(1, 2000, 1000, 2000, 1000), new(2, 2000, 1000, 2000, 3000)]);
        Assert.Equal(1250, targets[1]);
        Assert.Equal(1750, targets[2]);
    }

    [Fact]
    public void NoVmGoesBelowItsMinimumAndTheRestIsSpreadAgain()
    {
        // A can give only 100; B gives the other 500.
        var targets = AutoBalloonPolicy.Targets(10_000, 8_600, [new(1, 1100, 1000, 1100, 1), new(2, 4000, 1000, 4000, 1000)]);
        Assert.Equal(1000, targets[1]);
        Assert.Equal(3500, targets[2]);
    }

    [Fact]
    public void ZeroSharesLeaveAVmAlone()
    {
        var targets = AutoBalloonPolicy.Targets(10_000, 9_500, [new(1, 2000, 500, 1500, 0), new(2, 2000, 500, 2000, 1000)]);
        Assert.Equal(1500, targets[1]);
        Assert.Equal(500, targets[2]); // needs 1500, has 1500 of room
        Assert.Equal(2000, AutoBalloonPolicy.Targets(10_000, 100, [new(1, 2000, 500, 1500, 0)])[1] + 500); // not grown either
    }

    [Fact]
    public void HostMemoryIsTotalMinusAvailable()
    {
        var (total, used) = AutoBalloon.ReadHostMemory("MemTotal:        8192000 kB\nMemFree:  100 kB\nMemAvailable:    2048000 kB\n");
        Assert.Equal(8000, total);
        Assert.Equal(6000, used);
    }
}
