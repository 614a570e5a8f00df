using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Kvm.Client;

namespace Kvm.Tests.Shared;

/// <summary>
/// A real kvm-agent on loopback with its own data and run directories, started through its CLI
/// contract. Disposing deletes every VM it still has (VMs outlive the agent), then stops it.
/// </summary>
public sealed class AgentProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _dataDirectory;
    private readonly string _runDirectory;

    private AgentProcess(Process process, string endpoint, string token, string data, string run)
    {
        _process = process;
        Endpoint = endpoint;
        Token = token;
        _dataDirectory = data;
        _runDirectory = run;
        Client = KvmClient.Create(new Uri(endpoint), token);
    }

    /// <summary>The agent's process id (in its namespace, when it has one: <c>ip netns exec</c> execs it in place).</summary>
    public int Pid => _process.Id;

    public string Endpoint { get; }

    public string Token { get; }

    public KvmClient Client { get; }

    /// <summary>The agent's <c>--cgroup-parent</c>.</summary>
    public string CgroupParent => CgroupParentOf(_runDirectory);

    private static string CgroupParentOf(string run) => "kvm-test-" + Path.GetFileName(run);

    /// <summary>The agent's <c>--data-dir</c> (definitions, disks, the default pool).</summary>
    public string DataDirectory => _dataDirectory;

    /// <summary>The agent's <c>--run-dir</c> (pidfiles, QMP and guest agent sockets).</summary>
    public string RunDirectory => _runDirectory;

    /// <summary>The network namespace the agent (and its QEMUs, bridges, taps, dnsmasq) runs in; null: the host's.</summary>
    public string? Netns { get; private set; }

    public static Task<AgentProcess> StartAsync(string repoRoot, string? token = null) => StartAsync(repoRoot, token, inNamespace: false);

    /// <summary>
    /// An agent inside a network namespace made for it (<c>ip netns exec</c>): every bridge, tap, DHCP server and guest
    /// NIC it makes lives there, never on the host's links. It listens on a unix socket, which clients in the host's
    /// namespace (terraform, the Pulumi harness, this test) reach through the file system. Disposing deletes the namespace.
    /// </summary>
    public static Task<AgentProcess> StartInNamespaceAsync(string repoRoot, string? token = null) => StartAsync(repoRoot, token, inNamespace: true);

    private static async Task<AgentProcess> StartAsync(string repoRoot, string? token, bool inNamespace)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var binary = Path.Combine(repoRoot, "agent", "Kvm.Agent", "bin", configuration, "net10.0", "kvm-agent");
        if (!File.Exists(binary))
            throw new InvalidOperationException($"kvm-agent is not built at {binary}; build the solution first");
        var data = Directory.CreateTempSubdirectory("kvm-agent-data-").FullName;
        // QMP socket paths must stay under 108 bytes: a short run directory.
        var run = Path.Combine("/tmp", "kat-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(run);
        token ??= Guid.NewGuid().ToString("N");
        string? netns = null;
        string listen, endpoint;
        if (inNamespace)
        {
            netns = "kvmt-" + Guid.NewGuid().ToString("N")[..8];
            Ip("netns", "add", netns);
            Ip("-n", netns, "link", "set", "lo", "up");
            var socket = Path.Combine(run, "agent.sock");
            listen = "unix:" + socket;
            endpoint = "unix://" + socket;
        }
        else
        {
            var port = FreePort();
            listen = $"127.0.0.1:{port}";
            endpoint = $"http://127.0.0.1:{port}";
        }
        // `ip netns exec` execs the agent in place: the process started here is the agent itself.
        var start = new ProcessStartInfo(netns is null ? binary : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (netns is not null)
            foreach (var arg in new[] { "netns", "exec", netns, binary })
                start.ArgumentList.Add(arg);
        // Its own cgroup parent: per-VM cgroups (cpu.limit/weight/affinity) of test agents never meet.
        foreach (var arg in new[] { "--listen", listen, "--data-dir", data, "--run-dir", run, "--accel", "tcg", "--cgroup-parent", CgroupParentOf(run) })
            start.ArgumentList.Add(arg);
        start.Environment["KVM_AGENT_TOKEN"] = token;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var agent = new AgentProcess(process, endpoint, token, data, run) { Netns = netns };
        for (var i = 0; i < 300; i++)
        {
            if (process.HasExited)
            {
                agent.Dispose();
                throw new InvalidOperationException($"kvm-agent exited with {process.ExitCode}");
            }
            try
            {
                if (await agent.Client.IsHealthyAsync())
                    return agent;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(100);
        }
        agent.Dispose();
        throw new TimeoutException("kvm-agent did not become healthy in 30 s");
    }

    /// <summary>Runs <c>ip</c> with an argv array; throws with its stderr when it fails.</summary>
    public static string Ip(params string[] args)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        using var ip = Process.Start(info)!;
        var stdout = ip.StandardOutput.ReadToEndAsync();
        var stderr = ip.StandardError.ReadToEnd();
        if (!ip.WaitForExit(30_000))
        {
            ip.Kill();
            throw new TimeoutException("ip " + string.Join(' ', args) + " did not finish in 30 s");
        }
        if (ip.ExitCode != 0)
            throw new InvalidOperationException($"ip {string.Join(' ', args)} failed ({ip.ExitCode}): {stderr.Trim()}");
        return stdout.Result;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            foreach (var vm in Client.ListVmsAsync().GetAwaiter().GetResult())
                Client.DeleteVmAsync(vm.VmId!.Value, RunningVmDeletion.Force).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is HttpRequestException or KvmApiException)
        {
            // Best effort before stopping the agent.
        }
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }
        _process.Dispose();
        Client.Dispose();
        foreach (var cgroup in new[] { "", "cpu", "cpuset" }.Select(c => Path.Combine("/sys/fs/cgroup", c, CgroupParent)))
            try { if (Directory.Exists(cgroup)) Directory.Delete(cgroup); } catch (IOException) { }
        if (Netns is { } netns)
            RemoveNamespace(netns);
        foreach (var dir in new[] { _dataDirectory, _runDirectory })
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Temp files.
            }
            catch (UnauthorizedAccessException)
            {
                // Same.
            }
        }
    }

    /// <summary>The processes still in the agent's namespace (its QEMUs, dnsmasqs), by PID.</summary>
    public IReadOnlyList<int> NamespacePids() =>
        Netns is null ? [] : Ip("netns", "pids", Netns).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();

    // Everything in the namespace was started by this agent for this test: kill what is left by PID, then drop the
    // namespace, which takes its bridges and taps with it.
    private void RemoveNamespace(string netns)
    {
        try
        {
            foreach (var pid in NamespacePids())
            {
                try
                {
                    using var leftover = Process.GetProcessById(pid);
                    leftover.Kill();
                    leftover.WaitForExit(5000);
                }
                catch (ArgumentException)
                {
                    // Already gone.
                }
            }
            Ip("netns", "del", netns);
        }
        catch (InvalidOperationException)
        {
            // Best effort: a namespace that is already gone.
        }
    }
}
