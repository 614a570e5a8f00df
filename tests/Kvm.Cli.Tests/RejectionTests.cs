using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Kvm.Cli.Tests.Support;
using Kvm.Model;

namespace Kvm.Cli.Tests;

/// <summary>Bad input is refused with a message naming the option and exit 2, and nothing changes on the agent; transport and auth failures are told apart.</summary>
public sealed class RejectionTests(RejectionTests.Fixture fixture) : IClassFixture<RejectionTests.Fixture>
{
    /// <summary>One agent for the class, holding one stopped VM (200) that every rejected command must leave alone.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        public CliAgent Agent { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Agent = await CliAgent.StartAsync();
            var created = await Agent.RunAsync("create", "200", "--name", "keep", "--memory", "64");
            Assert.True(created.ExitCode == 0, created.ToString());
        }

        public async Task DisposeAsync() => await Agent.DisposeAsync();
    }

    private readonly CliAgent _agent = fixture.Agent;

    public static TheoryData<string[], string> BadCreates => new()
    {
        { ["create", "300", "--name", "web", "--disk", "usb0=1G"], "--disk usb0=1G" },
        { ["create", "300", "--name", "web", "--memory", "0"], "--memory 0" },
        { ["create", "300", "--name", "web", "--net", "net0=virtio,mac=01:00:00:00:00:00"], "--net net0=virtio,mac=01:00:00:00:00:00" },
        { ["create", "300", "--name", "web", "--disk", "scsi0=1.5G"], "--disk scsi0=1.5G" },
        { ["create", "300", "--name", "web", "--disk", "scsi0=1G,bogus=1"], "--disk scsi0=1G,bogus=1" },
        { ["create", "300", "--name", "web", "--net", "net0=virtio,firewall=1"], "--net net0=virtio,firewall=1" },
        { ["create", "300", "--name", "web", "--net", "net99=virtio"], "--net net99=virtio" },
        { ["create", "300", "--name", "web", "--ostype", "beos"], "--ostype beos" },
        { ["create", "300", "--name", "web", "--memory", "lots"], "--memory" },
        { ["create", "300", "--name", "web", "--boot", "order=scsi0"], "--boot order=scsi0" },
        { ["create", "300", "--name", "-bad-"], "--name -bad-" },
        { ["create", "300", "--name", "web", "--disk", "scsi0=1G,cache=fast"], "--disk scsi0=1G,cache=fast" },
        { ["create", "300", "--name", "web", "--initrd", "/boot/initrd.img"], "--initrd /boot/initrd.img" },
        { ["create", "300", "--name", "web", "--kvm", "maybe"], "'maybe'" },
        { ["create", "3x0", "--name", "web"], "VM ID \"3x0\"" },
        { ["create", "50", "--name", "web"], "ID 50" },
        { ["set", "200", "--memory", "8"], "--memory 8" },
        { ["set", "200", "--disk", "usb0=1G"], "--disk usb0=1G" },
        { ["set", "200", "--delete", "scsi7"], "--delete scsi7" },
        { ["set", "200"], "nothing to change" },
        { ["frobnicate", "200"], "unknown verb \"frobnicate\"" },
        { ["start"], "Required argument missing for command: 'start'" },
        { ["list", "--output", "xml"], "--output \"xml\"" },
    };

    [Theory]
    [MemberData(nameof(BadCreates))]
    public async Task BadOptionsAreRejectedWithExit2NamingTheOptionAndNothingChanges(string[] args, string named)
    {
        var before = Serialize(await _agent.Client.ListVmsAsync());
        var files = _agent.Listing();

        var result = await _agent.RunAsync(args);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(named, result.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("kvmctl: ", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("", result.Stdout);
        Assert.Equal(before, Serialize(await _agent.Client.ListVmsAsync()));
        Assert.Equal(files, _agent.Listing());
    }

    [Fact]
    public async Task TheDiskSlotErrorExplainsTheValidSlots()
    {
        var result = await _agent.RunAsync("create", "300", "--name", "web", "--disk", "usb0=1G", "--memory", "0");
        Assert.Contains("--disk usb0=1G: \"usb0\" is not a valid key: expected a slot name ide0–ide3, sata0–sata5, scsi0–scsi30 or virtio0–virtio15.", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("--memory 0: 0 is out of range: must be between 16 and 4194304.", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("nothing was sent to the agent", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadOptionsAreRejectedEvenWithoutAnAgent()
    {
        var result = await Kvmctl.RunAsync(["create", "300", "--name", "web", "--disk", "usb0=1G"], Kvmctl.Environment($"http://127.0.0.1:{ClosedPort()}", "x"));
        Assert.Equal(2, result.ExitCode);
    }

    [Fact]
    public async Task AnUnreachableAgentIsExit6WithTheAddress()
    {
        var port = ClosedPort();
        var result = await Kvmctl.RunAsync(["list"], Kvmctl.Environment($"http://127.0.0.1:{port}", "x"));
        Assert.True(result.ExitCode == 6, result.ToString());
        Assert.Contains($"cannot reach kvm-agent at http://127.0.0.1:{port}: connection refused", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("--endpoint", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AWrongTokenSaysSoAndNamesWhereTokensComeFrom()
    {
        var result = await Kvmctl.RunAsync(["list"], Kvmctl.Environment(_agent.Endpoint.ToString(), "wrong-token"));
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("(401)", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("refused the token", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("--token-file", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ATokenFileOptionIsRead()
    {
        var file = Path.Combine(_agent.Root, "cli-token");
        File.Delete(file);
        await File.WriteAllTextAsync(file, CliAgent.Token + "\n");
        var result = await Kvmctl.RunAsync(["--token-file", file, "list", "-o", "json"], Kvmctl.Environment(_agent.Endpoint.ToString(), null));
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("\"keep\"", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoTokenForARemoteEndpointIsAUsageError()
    {
        var result = await Kvmctl.RunAsync(["list"], Kvmctl.Environment("http://192.0.2.1:8680", null));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no token for http://192.0.2.1:8680", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingVmIsExit3()
    {
        foreach (var args in new[] { new[] { "show", "999" }, ["status", "999"], ["start", "999"], ["destroy", "999"], ["unlock", "999"], ["set", "999", "--cores", "2"], ["wait", "999"] })
        {
            var result = await _agent.RunAsync(args);
            Assert.True(result.ExitCode == 3, result.ToString());
            Assert.Contains("999", result.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ACreateOverAnExistingIdIsAConflict()
    {
        var result = await _agent.RunAsync("create", "200", "--name", "other", "--memory", "64");
        Assert.True(result.ExitCode == 4, result.ToString());
    }

    [Fact]
    public async Task WaitTimesOutWithExit5()
    {
        var started = await _agent.RunAsync("start", "200");
        Assert.True(started.ExitCode == 0, started.ToString());
        var result = await _agent.RunAsync("wait", "200", "--timeout", "0.5");
        Assert.True(result.ExitCode == 5, result.ToString());
        Assert.Contains("still running", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, (await _agent.RunAsync("stop", "200")).ExitCode);
    }

    [Fact]
    public async Task ImagesListsAndAnImportWithoutASourceIsRefusedBeforeAnyCall()
    {
        var listed = await _agent.RunAsync("images", "--output", "json");
        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.Equal("[]", listed.Stdout.Trim());
        var refused = await _agent.RunAsync("images", "import", "x.qcow2");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("url", refused.Stderr, StringComparison.Ordinal);
        Assert.Equal("[]", (await _agent.RunAsync("images", "--output", "json")).Stdout.Trim());
    }

    [Fact]
    public async Task UnlockExplainsThereIsNoPersistentLock()
    {
        var result = await _agent.RunAsync("unlock", "200");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("no persistent lock", result.Stdout, StringComparison.Ordinal);
    }

    private static string Serialize(IReadOnlyList<Vm> vms) => JsonSerializer.Serialize(vms.ToList(), ModelJsonContext.Default.ListVm);

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
