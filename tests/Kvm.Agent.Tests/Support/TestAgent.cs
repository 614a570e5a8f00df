using Kvm.Agent;
using Kvm.Agent.Host;
using Kvm.Client;
using Microsoft.Extensions.Logging;

namespace Kvm.Agent.Tests.Support;

/// <summary>
/// A real agent on 127.0.0.1:0 over temp data and run directories (short: QMP socket paths must stay under 108
/// bytes), with a client. Disposing it kills, by PID, every QEMU started under its run directory and removes the
/// directories, so a failing test leaves nothing behind.
/// </summary>
public sealed class TestAgent : IAsyncDisposable
{
    private readonly bool _ownsDirectories;

    private TestAgent(AgentHost host, string root, bool ownsDirectories)
    {
        Host = host;
        Root = root;
        _ownsDirectories = ownsDirectories;
        Client = KvmClient.Create(host.BaseAddress, host.Token);
    }

    public AgentHost Host { get; }
    public KvmClient Client { get; }
    public string Root { get; }
    public string DataDir => Path.Combine(Root, "data");
    public string RunDir => Path.Combine(Root, "run");
    public const string Token = "test-token-0123456789";

    public static Task<TestAgent> StartAsync(TimeSpan? lockWait = null) =>
        StartAsync(Directory.CreateTempSubdirectory("kvmt-").FullName, ownsDirectories: true, lockWait);

    /// <summary>A second agent on the same directories (the first must be stopped): an agent restart.</summary>
    public static Task<TestAgent> RestartOnAsync(string root) => StartAsync(root, ownsDirectories: true, null);

    private static async Task<TestAgent> StartAsync(string root, bool ownsDirectories, TimeSpan? lockWait)
    {
        var options = new AgentOptions
        {
            Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            DataDir = Path.Combine(root, "data"),
            RunDir = Path.Combine(root, "run"),
            Accel = "tcg",
            Token = Token,
            LogLevel = LogLevel.Warning,
            LockWait = lockWait ?? TimeSpan.FromSeconds(10),
            // Per-agent parent: tests running in parallel (and other agents on the host) never share per-VM cgroups.
            CgroupParent = CgroupParentFor(root),
        };
        var host = await AgentHost.StartAsync(options);
        return new TestAgent(host, root, ownsDirectories);
    }

    /// <summary>The cgroup (relative to /sys/fs/cgroup, or to each v1 controller's hierarchy) under which this agent puts VMs' cgroups.</summary>
    public string CgroupParent => CgroupParentFor(Root);

    private static string CgroupParentFor(string root) => "kvm-test-" + Path.GetFileName(root);

    private void RemoveCgroupParent()
    {
        foreach (var dir in new[] { "", "cpu", "cpuset" }.Select(c => Path.Combine("/sys/fs/cgroup", c, CgroupParent)))
        {
            if (!Directory.Exists(dir))
                continue;
            foreach (var vm in Directory.EnumerateDirectories(dir))
                try { Directory.Delete(vm); } catch (IOException) { }
            try { Directory.Delete(dir); } catch (IOException) { }
        }
    }

    /// <summary>A client with another token (or none).</summary>
    public HttpClient RawClient(string? token = Token)
    {
        var http = new HttpClient { BaseAddress = Host.BaseAddress };
        if (token is not null)
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    /// <summary>Every file and directory under the data and run directories, for before/after comparisons.</summary>
    public IReadOnlyList<string> Listing() =>
        [.. new[] { DataDir, RunDir }.Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFileSystemEntries(d, "*", SearchOption.AllDirectories))
            .Where(p => !p.EndsWith("token", StringComparison.Ordinal))
            .Select(p => p + (File.Exists(p) ? ":" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(p))) : "/"))
            .Order(StringComparer.Ordinal)];

    /// <summary>Stops the agent only: its VMs keep running (for restart tests).</summary>
    public async Task StopAgentOnlyAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Client.Dispose();
            await Host.DisposeAsync();
        }
        catch (ObjectDisposedException) { }
        QemuReaper.KillAllUnder(RunDir);
        RemoveCgroupParent();
        if (_ownsDirectories)
        {
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>Kills QEMUs (and their swtpms) a test started: found by the pidfiles under a run directory, checked against /proc, killed by PID.</summary>
public static class QemuReaper
{
    public static IReadOnlyList<int> PidsUnder(string runDir) =>
        !Directory.Exists(runDir) ? [] :
        [.. new[] { "qemu.pid", "swtpm.pid" }.SelectMany(name => Directory.EnumerateFiles(runDir, name, SearchOption.AllDirectories))
            .Select(f => int.TryParse(SafeRead(f).Trim(), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && ProcessTable.IsAlive(pid) && ProcessTable.ReadCommandLine(pid).Any(a => a.Contains(runDir, StringComparison.Ordinal)))];

    public static void KillAllUnder(string runDir)
    {
        foreach (var pid in PidsUnder(runDir))
            Kill(pid);
    }

    public static void Kill(int pid)
    {
        ProcessTable.Signal(pid, 9);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (ProcessTable.IsAlive(pid) && DateTime.UtcNow < deadline)
            Thread.Sleep(10);
        ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(2)).GetAwaiter().GetResult();
    }

    private static string SafeRead(string path)
    {
        try { return File.ReadAllText(path); } catch (IOException) { return ""; }
    }
}
