using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;

namespace Kvm.Agent.Tests.Host;

/// <summary>The one process seam, with real processes.</summary>
public sealed class CommandRunnerTests
{
    private readonly CommandRunner _runner = new();

    [Fact]
    public async Task ACommandRunsFromArgvWithoutAShell()
    {
        var result = await _runner.RunAsync(["printf", "%s|", "a b", "$(id)", ";rm"], TimeSpan.FromSeconds(10));
        Assert.True(result.Ok);
        Assert.Equal("a b|$(id)|;rm|", result.StdOut);
    }

    [Fact]
    public async Task ACommandOverItsDeadlineIsKilled()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await _runner.RunAsync(["sleep", "30"], TimeSpan.FromMilliseconds(300));
        Assert.Equal(124, result.ExitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AMissingProgramIsExitCode127()
    {
        var result = await _runner.RunAsync(["/nonexistent/program"], TimeSpan.FromSeconds(5));
        Assert.Equal(127, result.ExitCode);
    }

    [Fact]
    public async Task ChildrenDoNotInheritTheAgentsEnvironment()
    {
        Environment.SetEnvironmentVariable("KVM_AGENT_TOKEN", "must-not-leak");
        try
        {
            var result = await _runner.RunAsync(["env"], TimeSpan.FromSeconds(5));
            Assert.DoesNotContain("must-not-leak", result.StdOut, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable("KVM_AGENT_TOKEN", null);
        }
    }

    [Fact]
    public async Task ADetachedProcessGetsItsOwnSessionAndLogAndIsReapedWhenItExits()
    {
        var dir = Directory.CreateTempSubdirectory("kvmt-").FullName;
        try
        {
            var log = Path.Combine(dir, "out.log");
            var pid = _runner.SpawnDetached(["sh", "-c", "echo out; echo err >&2; read x; echo stdin=$x; sleep 0.3; exit 3"], log);
            var stat = (await File.ReadAllTextAsync($"/proc/{pid}/stat")).Split(' ');
            Assert.Equal(pid.ToString(System.Globalization.CultureInfo.InvariantCulture), stat[5]); // session leader
            await Eventually.TrueAsync(() => !ProcessTable.IsAlive(pid), TimeSpan.FromSeconds(10), "detached process exits");
            await ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(2));
            Assert.Equal(new ProcessExit(3, null), ProcessTable.TakeExit(pid));
            Assert.Null(ProcessTable.ReadState(pid)); // no zombie
            Assert.Equal("out\nerr\nstdin=\n", await File.ReadAllTextAsync(log));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
