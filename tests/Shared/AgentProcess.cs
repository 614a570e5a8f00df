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

    /// <summary>The agent's <c>--data-dir</c> (definitions, disks, the default pool).</summary>
    public string DataDirectory => _dataDirectory;

    /// <summary>The agent's <c>--run-dir</c> (pidfiles, QMP sockets).</summary>
    public string RunDirectory => _runDirectory;

    public string Endpoint { get; }

    public string Token { get; }

    public KvmClient Client { get; }

    public static async Task<AgentProcess> StartAsync(string repoRoot, string? token = null)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var binary = Path.Combine(repoRoot, "agent", "Kvm.Agent", "bin", configuration, "net10.0", "kvm-agent");
        if (!File.Exists(binary))
            throw new InvalidOperationException($"kvm-agent is not built at {binary}; build the solution first");
        var port = FreePort();
        var data = Directory.CreateTempSubdirectory("kvm-agent-data-").FullName;
        // QMP socket paths must stay under 108 bytes: a short run directory.
        var run = Path.Combine("/tmp", "kat-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(run);
        token ??= Guid.NewGuid().ToString("N");
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--listen", $"127.0.0.1:{port}", "--data-dir", data, "--run-dir", run, "--accel", "tcg" })
            start.ArgumentList.Add(arg);
        start.Environment["KVM_AGENT_TOKEN"] = token;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var agent = new AgentProcess(process, $"http://127.0.0.1:{port}", token, data, run);
        for (var i = 0; i < 300; i++)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"kvm-agent exited with {process.ExitCode}");
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
}
