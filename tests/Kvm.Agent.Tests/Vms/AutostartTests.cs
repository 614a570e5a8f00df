using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Vms;

/// <summary>
/// Autostart with the real kvm-agent binary, restarted on the same directories as a host reboot would: VMs whose QEMU
/// died start again in order with their up delay; SIGTERM with --stop-vms-on-exit shuts them down in reverse order and
/// leaves the other VMs running.
/// </summary>
[Collection("qemu")]
public sealed partial class AutostartTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("kvm-autostart-").FullName;
    private readonly string _run = Path.Combine("/tmp", "kas-" + Guid.NewGuid().ToString("N")[..6]);
    private readonly string _token = Guid.NewGuid().ToString("N");
    private readonly StringBuilder _output = new();
    private Process? _agent;
    private KvmClient? _client;

    private KvmClient Client => _client!;

    private async Task StartAgentAsync()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var binary = Path.Combine(RepoRoot(), "agent", "Kvm.Agent", "bin", configuration, "net10.0", "kvm-agent");
        var port = FreePort();
        var start = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "--listen", $"127.0.0.1:{port}", "--data-dir", _data, "--run-dir", _run, "--accel", "tcg", "--stop-vms-on-exit" })
            start.ArgumentList.Add(arg);
        start.Environment["KVM_AGENT_TOKEN"] = _token;
        _agent = Process.Start(start)!;
        _agent.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _agent.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _agent.BeginOutputReadLine();
        _agent.BeginErrorReadLine();
        _client?.Dispose();
        _client = KvmClient.Create(new Uri($"http://127.0.0.1:{port}/"), _token);
        await Eventually.TrueAsync(async () =>
        {
            try { return await _client.IsHealthyAsync(); }
            catch (HttpRequestException) { return false; }
        }, TimeSpan.FromSeconds(30), "the agent listening");
    }

    private static VmSpec Vm(string name, AutostartSpec? autostart, string? powerState = null) => new()
    {
        Name = Specs.UniqueName(name),
        Memory = new MemorySpec { SizeMib = 64 },
        Display = new DisplaySpec { Vga = "none", Vnc = false },
        Autostart = autostart,
        PowerState = powerState,
    };

    private string Output()
    {
        lock (_output)
            return _output.ToString();
    }

    [Fact]
    public async Task AutostartVmsStartInOrderWhenTheAgentStartsAndStopInReverseOrderOnSigterm()
    {
        await StartAgentAsync();
        var second = (await Client.CreateVmAsync(Vm("second", new AutostartSpec { Enabled = true, Order = 2, DownDelaySeconds = 1 }))).Value;
        var first = (await Client.CreateVmAsync(Vm("first", new AutostartSpec { Enabled = true, Order = 1, UpDelaySeconds = 2, DownDelaySeconds = 1 }))).Value;
        var manual = (await Client.CreateVmAsync(Vm("manual", null))).Value;
        var parked = (await Client.CreateVmAsync(Vm("parked", new AutostartSpec { Enabled = true, Order = 0 }, powerState: "stopped"))).Value;

        // A host crash: the agent and every QEMU die at once.
        _agent!.Kill();
        await _agent.WaitForExitAsync();
        foreach (var vm in new[] { first, second, manual })
            QemuReaper.Kill((int)vm.Pid!.Value);

        await StartAgentAsync();
        await Eventually.TrueAsync(async () => (await Client.GetVmAsync(second.VmId!.Value)).Value.Status == "running", TimeSpan.FromSeconds(30), "the second autostart VM running");
        var a = (await Client.GetVmAsync(first.VmId!.Value)).Value;
        var b = (await Client.GetVmAsync(second.VmId!.Value)).Value;
        Assert.Equal("running", a.Status);
        var gap = DateTimeOffset.Parse(b.StartedAt!, CultureInfo.InvariantCulture) - DateTimeOffset.Parse(a.StartedAt!, CultureInfo.InvariantCulture);
        Assert.True(gap >= TimeSpan.FromSeconds(2), $"order 2 started {gap.TotalMilliseconds:0} ms after order 1; up_delay_seconds is 2");
        Assert.NotEqual("running", (await Client.GetVmAsync(manual.VmId!.Value)).Value.Status); // no autostart
        Assert.Equal("stopped", (await Client.GetVmAsync(parked.VmId!.Value)).Value.Status);    // power_state stopped wins

        // Host shutdown: SIGTERM with --stop-vms-on-exit shuts the autostart VMs down, last started first; others keep running.
        var manualPid = (int)(await Client.StartVmAsync(manual.VmId!.Value)).Pid!.Value;
        ProcessTable.Signal(_agent!.Id, Posix.SIGTERM);
        Assert.True(_agent.WaitForExit(TimeSpan.FromSeconds(60)), "the agent did not exit after SIGTERM");
        _agent.WaitForExit(); // only the overload without a timeout waits for the redirected output to drain
        Assert.False(ProcessTable.IsAlive((int)a.Pid!.Value));
        Assert.False(ProcessTable.IsAlive((int)b.Pid!.Value));
        Assert.True(ProcessTable.IsAlive(manualPid), "a VM without autostart was stopped");
        var shutDown = ShutDownLine().Matches(Output()).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal([second.VmId!.Value, first.VmId!.Value], shutDown);

        await StartAgentAsync(); // adopts the manual VM, starts the autostart ones again
        await Eventually.TrueAsync(async () => (await Client.GetVmAsync(second.VmId!.Value)).Value.Status == "running", TimeSpan.FromSeconds(30), "autostart after a clean shutdown");
        Assert.Equal(manualPid, (int)(await Client.GetVmAsync(manual.VmId!.Value)).Value.Pid!.Value);
    }

    [GeneratedRegex(@"VM (\d+) shut down as the agent stops")]
    private static partial Regex ShutDownLine();

    public void Dispose()
    {
        try
        {
            if (_client is not null)
                foreach (var vm in _client.ListVmsAsync().GetAwaiter().GetResult())
                    _client.DeleteVmAsync(vm.VmId!.Value, RunningVmDeletion.Force).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is HttpRequestException or KvmApiException) { }
        if (_agent is { HasExited: false })
        {
            _agent.Kill();
            _agent.WaitForExit(5000);
        }
        QemuReaper.KillAllUnder(_run);
        _client?.Dispose();
        foreach (var dir in new[] { _data, _run })
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "agent", "Kvm.Agent")))
                return dir.FullName;
        throw new DirectoryNotFoundException("repository root not found");
    }
}
