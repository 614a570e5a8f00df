using System.Diagnostics;

namespace Kvm.Tests.Shared;

/// <summary>
/// A static file server on the loopback of a test's network namespace (busybox httpd), so an agent inside that
/// namespace can import images "from a URL" without any traffic leaving the namespace. Disposing kills it by PID.
/// </summary>
public sealed class NamespaceFileServer : IDisposable
{
    private readonly Process _process;

    private NamespaceFileServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public int Pid => _process.Id;

    /// <summary>The URL of <paramref name="file"/> (a name inside the served directory).</summary>
    public string UrlOf(string file) => $"http://127.0.0.1:{Port}/{Uri.EscapeDataString(file)}";

    public static async Task<NamespaceFileServer> StartAsync(string netns, string directory)
    {
        // Nothing else listens in a fresh namespace; a port clash would show as an early exit.
        var port = Random.Shared.Next(20_000, 60_000);
        var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "netns", "exec", netns, "busybox", "httpd", "-f", "-p", $"127.0.0.1:{port}", "-h", directory })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        var server = new NamespaceFileServer(process, port);
        for (var i = 0; i < 50; i++)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"busybox httpd exited with {process.ExitCode}: {await process.StandardError.ReadToEndAsync()}");
            if (AgentProcess.Ip("netns", "exec", netns, "busybox", "netstat", "-ltn").Contains($"127.0.0.1:{port}", StringComparison.Ordinal))
                return server;
            await Task.Delay(100);
        }
        server.Dispose();
        throw new TimeoutException("busybox httpd did not listen within 5 s");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }
        _process.Dispose();
    }
}
