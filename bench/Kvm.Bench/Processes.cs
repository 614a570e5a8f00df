using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Kvm.Bench;

/// <summary>
/// Every process the bench started, written to <c>WORK/pids</c> as it starts so <c>bench/run</c> can still kill them
/// if this process dies. A PID is only ever signalled while its command line still names the work directory
/// (PIDs get reused).
/// </summary>
public sealed class PidRegistry(string workDir)
{
    private readonly string _file = Path.Combine(workDir, "pids");
    private readonly ConcurrentDictionary<int, string> _pids = new();
    private readonly Lock _lock = new();

    public string WorkDir { get; } = workDir;

    public void Add(int pid, string kind)
    {
        if (!_pids.TryAdd(pid, kind))
            return;
        lock (_lock)
            File.AppendAllText(_file, $"{pid.ToString(CultureInfo.InvariantCulture)}\t{kind}\n");
    }

    public bool IsOurs(int pid) => Native.IsAlive(pid) && Native.CommandLine(pid).Contains(WorkDir, StringComparison.Ordinal);

    /// <summary>SIGKILLs every registered process that still runs and is still ours; returns how many.</summary>
    public async Task<int> KillLeftoversAsync()
    {
        var killed = 0;
        foreach (var (pid, _) in _pids)
        {
            if (IsOurs(pid) && Native.Signal(pid, Native.SIGKILL))
                killed++;
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (_pids.Keys.Any(IsOurs) && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        return killed;
    }
}

/// <summary>A kvm-agent the bench started: its PID, its log (kept in memory and on disk), its address.</summary>
public sealed class AgentProcess
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _logLock = new();
    private readonly List<string> _lines = [];

    private AgentProcess(Process process, Uri baseAddress, StreamWriter log, Stopwatch sinceExec)
    {
        _process = process;
        BaseAddress = baseAddress;
        _log = log;
        SinceExec = sinceExec;
    }

    public int Pid => _process.Id;
    public Uri BaseAddress { get; }
    /// <summary>Started immediately before the exec.</summary>
    public Stopwatch SinceExec { get; }
    /// <summary>A snapshot of every line the agent printed so far.</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_logLock)
                return [.. _lines];
        }
    }

    public static AgentProcess Start(string executable, string dataDir, string runDir, int port, string token, string logPath, PidRegistry pids)
    {
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--listen", $"127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", "--data-dir", dataDir, "--run-dir", runDir, "--accel", "tcg" })
            start.ArgumentList.Add(arg);
        start.Environment["KVM_AGENT_TOKEN"] = token;
        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        var process = new Process { StartInfo = start };
        var clock = Stopwatch.StartNew();
        process.Start();
        pids.Add(process.Id, "agent");
        var agent = new AgentProcess(process, new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/"), log, clock);
        process.OutputDataReceived += (_, e) => agent.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => agent.OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return agent;
    }

    private void OnLine(string? line)
    {
        if (line is null)
            return;
        lock (_logLock)
        {
            _lines.Add(line);
            _log.WriteLine(line);
        }
    }

    /// <summary>Milliseconds from exec to the first /healthz 200 (polled every millisecond or so), or throws after <paramref name="timeout"/>.</summary>
    public async Task<double> WaitHealthyAsync(HttpClient probe, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = SinceExec.Elapsed + timeout;
        while (SinceExec.Elapsed < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"kvm-agent exited with {_process.ExitCode} before it answered /healthz: {string.Join(" | ", Lines.TakeLast(10))}");
            try
            {
                using var response = await probe.GetAsync(new Uri(BaseAddress, "healthz"), cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                    return SinceExec.Elapsed.TotalMilliseconds;
            }
            catch (HttpRequestException) { }
            await Task.Delay(1, cancellationToken);
        }
        throw new TimeoutException($"kvm-agent did not answer /healthz within {timeout.TotalSeconds} s");
    }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>; VMs keep running (they outlive the agent).</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            Native.Signal(_process.Id, Native.SIGTERM);
            using var wait = new CancellationTokenSource(grace);
            try { await _process.WaitForExitAsync(wait.Token); }
            catch (OperationCanceledException)
            {
                Native.Signal(_process.Id, Native.SIGKILL);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }
        // Let the output pumps drain before the log is closed.
        await _process.WaitForExitAsync(CancellationToken.None);
        lock (_logLock)
            _log.Dispose();
        _process.Dispose();
    }

    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>Runs bench/create-start/raw.sh and reads its per-VM lines.</summary>
public static class RawScript
{
    public sealed record Sample(int Index, double TotalMs, double QemuImgMs, double LaunchMs, int Pid);

    public static async Task<List<Sample>> RunAsync(string script, int count, string variant, string workDir, PidRegistry pids, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { script, "-n", count.ToString(CultureInfo.InvariantCulture), "-d", workDir, "--argv", variant })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start bash");
        pids.Add(process.Id, "raw.sh");
        var samples = new List<Sample>();
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
            {
                var f = line.Split('\t');
                if (f is not ["vm", _, _, _, _, _])
                    continue;
                var sample = new Sample(int.Parse(f[1], CultureInfo.InvariantCulture), Parse(f[2]), Parse(f[3]), Parse(f[4]), int.Parse(f[5], CultureInfo.InvariantCulture));
                pids.Add(sample.Pid, "qemu (raw)");
                samples.Add(sample);
            }
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            // raw.sh cleans up its QEMUs in its EXIT trap; SIGTERM lets it run.
            Native.Signal(process.Id, Native.SIGTERM);
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await process.WaitForExitAsync(grace.Token); }
            catch (OperationCanceledException) { Native.Signal(process.Id, Native.SIGKILL); }
            throw;
        }
        if (process.ExitCode != 0 || samples.Count != count)
            throw new InvalidOperationException($"raw.sh --argv {variant} failed (exit {process.ExitCode}, {samples.Count}/{count} VMs): {(await stderr).Trim()}");
        return samples;
    }

    private static double Parse(string s) => double.Parse(s, CultureInfo.InvariantCulture);
}
