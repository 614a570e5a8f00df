using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Cli.Tests.Support;
using Kvm.Model;

namespace Kvm.Cli.Tests;

/// <summary>Output for scripts (every read verb's --output json parses), for people (help with examples), and for shells (completion).</summary>
public sealed class OutputTests(OutputTests.Fixture fixture) : IClassFixture<OutputTests.Fixture>
{
    /// <summary>One agent for the class with one stopped VM whose ID the agent allocated.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        public CliAgent Agent { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Agent = await CliAgent.StartAsync();
            var created = await Agent.RunAsync("create", "--name", "auto", "--memory", "64", "--disk", "scsi0=1G");
            Assert.True(created.ExitCode == 0, created.ToString());
        }

        public async Task DisposeAsync() => await Agent.DisposeAsync();
    }

    private readonly CliAgent _agent = fixture.Agent;

    private async Task<string> Json(params string[] args)
    {
        var result = await _agent.RunAsync([.. args, "--output", "json"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Stdout;
    }

    [Fact]
    public async Task EveryReadVerbPrintsModelJson()
    {
        var vms = JsonSerializer.Deserialize(await Json("list"), ModelJsonContext.Default.ListVm)!;
        var vm = Assert.Single(vms);
        Assert.Equal(100, vm.VmId); // no ID given: the agent allocated the lowest free one
        Assert.Equal("auto", JsonSerializer.Deserialize(await Json("show", "100"), ModelJsonContext.Default.Vm)!.Name);
        var status = JsonNode.Parse(await Json("status", "100"))!;
        Assert.Equal("stopped", (string?)status["status"]);
        Assert.Equal(100, (long?)status["vm_id"]);
        Assert.NotNull(JsonSerializer.Deserialize(await Json("host"), ModelJsonContext.Default.HostInfo)!.QemuVersion);
        var pools = JsonSerializer.Deserialize(await Json("pools"), ModelJsonContext.Default.ListStoragePool)!;
        Assert.Contains(pools, p => p.Name == "default");
        Assert.NotNull(JsonSerializer.Deserialize(await Json("pools", "list"), ModelJsonContext.Default.ListStoragePool));
        Assert.NotNull(JsonSerializer.Deserialize(await Json("networks"), ModelJsonContext.Default.ListNetwork));
        Assert.NotNull(JsonSerializer.Deserialize(await Json("volumes"), ModelJsonContext.Default.ListVolume));
    }

    [Fact]
    public async Task VolumesAreCreatedResizedAttachedAndDeleted()
    {
        var created = JsonSerializer.Deserialize(await Json("volumes", "create", "data.qcow2", "--size", "1G"), ModelJsonContext.Default.Volume)!;
        Assert.Equal("default/data.qcow2", created.VolumeId);
        var grown = JsonSerializer.Deserialize(await Json("volumes", "resize", "default/data.qcow2", "+1G"), ModelJsonContext.Default.Volume)!;
        Assert.Equal(2, grown.SizeGib);
        var table = await _agent.RunAsync("volumes");
        Assert.Matches(@"default/data\.qcow2\s+qcow2\s+2 GiB", table.Stdout);

        var shrink = await _agent.RunAsync("volumes", "resize", "data.qcow2", "1G");
        Assert.True(shrink.ExitCode == 2, shrink.ToString());
        Assert.Contains("SIZE 1G", shrink.Stderr, StringComparison.Ordinal);

        var attached = await _agent.RunAsync("set", "100", "--disk", "virtio1=volume:default/data.qcow2");
        Assert.True(attached.ExitCode == 0, attached.ToString());
        Assert.Equal("default/data.qcow2", (await _agent.Client.GetVmAsync(100)).Value.Disks?["virtio1"].VolumeId);
        var busy = await _agent.RunAsync("volumes", "delete", "default/data.qcow2");
        Assert.NotEqual(0, busy.ExitCode);
        Assert.Equal(0, (await _agent.RunAsync("set", "100", "--delete", "virtio1")).ExitCode);
        var deleted = await _agent.RunAsync("volumes", "delete", "default/data.qcow2");
        Assert.True(deleted.ExitCode == 0, deleted.ToString());
        Assert.Equal("[]", (await Json("volumes")).Trim());
    }

    [Fact]
    public async Task ShowPrintsYamlByDefault()
    {
        var result = await _agent.RunAsync("show", "100");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("vm_id: 100\n", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("disks:\n  scsi0:\n    size_gib: 1\n", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("power_state: stopped\n", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostPrintsFactsForPeople()
    {
        var result = await _agent.RunAsync("host");
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"qemu:\s+\d+\.\d+", result.Stdout);
        Assert.Matches(@"default accelerator:\s+tcg", result.Stdout);
    }

    [Fact]
    public async Task CompletionPrintsABashScriptUsingTheSuggestDirective()
    {
        var script = await Kvmctl.RunAsync(["completion", "bash"], Kvmctl.Environment(null, null));
        Assert.Equal(0, script.ExitCode);
        Assert.Contains("[suggest:", script.Stdout, StringComparison.Ordinal);
        Assert.Contains("complete -o default -F _kvmctl_complete kvmctl", script.Stdout, StringComparison.Ordinal);

        var verbs = await Kvmctl.RunAsync(["[suggest:9]", "kvmctl sh"], Kvmctl.Environment(null, null));
        // System.CommandLine matches a typed word anywhere in a verb ("snapshots" has "sh").
        Assert.Equal(["show", "shutdown", "snapshots"], verbs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var options = await Kvmctl.RunAsync(["[suggest:23]", "kvmctl create 300 --mem"], Kvmctl.Environment(null, null));
        Assert.Contains("--memory", options.Stdout.Split('\n'));

        // VM IDs come from the agent.
        var ids = await _agent.RunAsync("[suggest:13]", "kvmctl start ");
        Assert.Contains("100", ids.Stdout.Split('\n'));
    }

    [Fact]
    public async Task TheBashScriptCompletesInARealBash()
    {
        if (!File.Exists("/bin/bash"))
            return;
        var dir = Path.GetDirectoryName(Kvmctl.Path)!;
        var script = (await Kvmctl.RunAsync(["completion", "bash"], Kvmctl.Environment(null, null))).Stdout;
        var scriptFile = Path.Combine(_agent.Root, "kvmctl.bash");
        await File.WriteAllTextAsync(scriptFile, script);
        var probe = $"source {scriptFile}; COMP_LINE='kvmctl stat'; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=(kvmctl stat); COMP_CWORD=1; _kvmctl_complete; printf '%s\\n' \"${{COMPREPLY[@]}}\"";
        var start = new System.Diagnostics.ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(probe);
        start.Environment["PATH"] = dir + ":" + Environment.GetEnvironmentVariable("PATH");
        using var bash = System.Diagnostics.Process.Start(start)!;
        var output = await bash.StandardOutput.ReadToEndAsync();
        await bash.WaitForExitAsync();
        Assert.Equal("status\n", output);
    }
}

/// <summary>Help needs no agent: every verb documents itself with an example.</summary>
public sealed class HelpTests
{
    public static TheoryData<string> Verbs => new()
    {
        "list", "show", "create", "set", "status", "start", "stop", "shutdown", "reboot", "reset", "suspend", "resume", "wait",
        "destroy", "unlock", "volumes", "volumes create", "volumes resize", "volumes delete", "networks", "networks create",
        "networks delete", "pools", "pools create", "pools delete", "images", "host", "completion",
        "snapshots", "snapshots create", "snapshots delete", "snapshots rollback",
    };

    [Theory]
    [MemberData(nameof(Verbs))]
    public async Task EveryVerbHasHelpWithAnExample(string verb)
    {
        var result = await Kvmctl.RunAsync([.. verb.Split(' '), "--help"], Kvmctl.Environment(null, null));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Usage:", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("Examples:\n  kvmctl " + verb.Split(' ')[0], result.Stdout, StringComparison.Ordinal);
    }
}
