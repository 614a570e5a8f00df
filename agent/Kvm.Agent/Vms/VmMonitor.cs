using System.Text.Json.Nodes;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Model;

namespace Kvm.Agent.Vms;

/// <summary>
/// Watches one running QEMU: owns its QMP connection, turns events into <see cref="Status"/>, and notices
/// its death within a fraction of a second (QMP end of file, then /proc and waitpid; a zombie is dead).
/// </summary>
public sealed class VmMonitor : IAsyncDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);
    private readonly TaskCompletionSource<string> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _logger;
    private QmpClient? _qmp;
    private volatile string _status;
    private Task? _watch;

    private VmMonitor(long vmId, int pid, string qmpSocket, VmSpec startedSpec, DateTimeOffset startedAt, string accelerator, ILogger logger)
    {
        VmId = vmId;
        Pid = pid;
        QmpSocket = qmpSocket;
        StartedSpec = startedSpec;
        StartedAt = startedAt;
        Accelerator = accelerator;
        _logger = logger;
        _status = VmStatus.Running;
    }

    /// <summary>The VM.</summary>
    public long VmId { get; }
    /// <summary>QEMU's PID.</summary>
    public int Pid { get; }
    /// <summary>QMP socket path.</summary>
    public string QmpSocket { get; }
    /// <summary>
    /// The effective spec QEMU runs with (pending changes are measured against it): the one it started with, plus
    /// the devices plugged and minus those unplugged since.
    /// </summary>
    public VmSpec StartedSpec { get; set; }
    /// <summary>When QEMU started.</summary>
    public DateTimeOffset StartedAt { get; }
    /// <summary>kvm or tcg.</summary>
    public string Accelerator { get; }
    /// <summary>Observed status, from events; served to GETs without asking QEMU.</summary>
    // Once QEMU is gone its final status is the exit's: status and exit can never disagree.
    public string Status => _exited.Task.IsCompleted ? _exited.Task.Result : _status;
    /// <summary>VNC address, when the VM has a console.</summary>
    public string? ConsoleEndpoint { get; private set; }
    /// <summary>Settings stored since the start that take effect at the next start.</summary>
    public IReadOnlyList<string> PendingChanges { get; set; } = [];
    /// <summary>Set before the agent stops QEMU itself, so the exit reads as <c>stopped</c>, not <c>crashed</c>.</summary>
    public bool StopRequested { get; set; }
    /// <summary>The guest powered off (SHUTDOWN event from the guest): its exit is a stop.</summary>
    public bool GuestShutdown { get; private set; }
    /// <summary>Completes with the final status (<c>stopped</c> or <c>crashed</c>) once the process is gone.</summary>
    public Task<string> Exited => _exited.Task;
    /// <summary>True once the process is gone.</summary>
    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>
    /// Connects to a QEMU that was just spawned or is being adopted, waiting up to <paramref name="timeout"/> for its
    /// QMP socket. Returns null (and the caller reads the QEMU log) when the process dies first. A QEMU that stays
    /// alive but never answers is watched anyway and reported unresponsive.
    /// </summary>
    public static async Task<VmMonitor?> AttachAsync(long vmId, int pid, string qmpSocket, VmSpec startedSpec, DateTimeOffset startedAt,
        string accelerator, TimeSpan timeout, ILogger logger, CancellationToken cancellationToken)
    {
        var monitor = new VmMonitor(vmId, pid, qmpSocket, startedSpec, startedAt, accelerator, logger);
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            if (!ProcessTable.IsAlive(pid))
                return null;
            if (File.Exists(qmpSocket))
            {
                try
                {
                    monitor._qmp = await QmpClient.ConnectAsync(qmpSocket, TimeSpan.FromSeconds(Math.Max(0.5, (deadline - DateTime.UtcNow).TotalSeconds)), monitor.OnEvent, cancellationToken);
                    break;
                }
                catch (Exception e) when (e is IOException or TimeoutException or System.Net.Sockets.SocketException or QmpException)
                {
                    last = e;
                }
            }
            // QEMU binds the socket tens of milliseconds after exec: a short poll keeps that wait off every start.
            await Task.Delay(1, cancellationToken);
        }
        if (monitor._qmp is null)
        {
            if (!ProcessTable.IsAlive(pid))
                return null;
            monitor._status = VmStatus.Unresponsive;
            Log.VmUnresponsive(logger, last, vmId, pid);
        }
        else
        {
            await monitor.RefreshStatusAsync(cancellationToken);
            if (startedSpec.Display?.Vnc != false && startedSpec.Display?.Vga is not ("none" or "serial0"))
                await monitor.RefreshConsoleAsync(cancellationToken);
        }
        monitor._watch = monitor.WatchAsync();
        return monitor;
    }

    /// <summary>Runs a QMP command on the VM (bounded); 409 when QEMU does not answer.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var qmp = _qmp ?? throw AgentProblemException.InvalidState($"VM {VmId}'s QEMU (pid {Pid}) does not answer on QMP.");
        return await qmp.ExecuteAsync(command, arguments, timeout, cancellationToken);
    }

    /// <summary>Asks QEMU for its run state and updates <see cref="Status"/>.</summary>
    public async Task RefreshStatusAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var reply = await ExecuteAsync("query-status", cancellationToken: cancellationToken);
            SetStatus(VmStatus.FromRunState(reply?["status"]?.GetValue<string>()), "query-status");
        }
        catch (Exception e) when (e is IOException or TimeoutException or QmpException) { }
    }

    private async Task RefreshConsoleAsync(CancellationToken cancellationToken)
    {
        try
        {
            var vnc = await ExecuteAsync("query-vnc", cancellationToken: cancellationToken);
            if (vnc?["enabled"]?.GetValue<bool>() == true && vnc["host"]?.GetValue<string>() is { } host && vnc["service"]?.GetValue<string>() is { } port)
                ConsoleEndpoint = $"vnc://{(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host)}:{port}";
        }
        catch (Exception e) when (e is IOException or TimeoutException or QmpException) { }
    }

    private void OnEvent(QmpEvent e)
    {
        switch (e.Name)
        {
            case "RESUME":
                SetStatus(VmStatus.Running, e.Name);
                break;
            case "STOP":
                // STOP carries no reason: paused by request, or stopped on an error that query-status names.
                if (_status is not (VmStatus.IoError or VmStatus.GuestPanicked or VmStatus.InternalError))
                    SetStatus(VmStatus.Paused, e.Name);
                _ = RefreshStatusAsync(_stop.Token);
                break;
            case "SHUTDOWN":
                if (e.Data?["guest"]?.GetValue<bool>() == true)
                    GuestShutdown = true;
                break;
            case "GUEST_PANICKED":
                SetStatus(VmStatus.GuestPanicked, e.Name);
                break;
            case "BLOCK_IO_ERROR":
                if (e.Data?["action"]?.GetValue<string>() == "stop")
                    SetStatus(VmStatus.IoError, e.Name);
                break;
            case "DEVICE_DELETED":
                if (e.Data?["device"]?.GetValue<string>() is { } device && _deleted.TryRemove(device, out var waiter))
                    waiter.TrySetResult();
                break;
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource> _deleted = new(StringComparer.Ordinal);

    /// <summary>
    /// Completes when QEMU reports DEVICE_DELETED for qdev id <paramref name="device"/>. Call it before <c>device_del</c>:
    /// the event may come before the command's answer.
    /// </summary>
    public Task DeviceDeleted(string device) =>
        _deleted.GetOrAdd(device, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    private void SetStatus(string status, string reason)
    {
        if (HasExited)
            return;
        var old = _status;
        _status = status;
        if (old != status)
            Log.VmStatusChanged(_logger, VmId, status, reason);
    }

    private async Task WatchAsync()
    {
        var lostQmpAt = (DateTime?)null;
        while (!_stop.IsCancellationRequested)
        {
            var tick = Task.Delay(PollInterval, _stop.Token);
            await (_qmp is { } qmp ? Task.WhenAny(qmp.Closed, tick) : tick).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (_stop.IsCancellationRequested)
                return;
            if (!ProcessTable.IsAlive(Pid))
            {
                // QEMU closes its sockets a moment before it is reaped; the exit status tells a signal from a clean exit.
                await ProcessTable.ReapAsync(Pid, TimeSpan.FromSeconds(2));
                // The tick can win the race with the QMP reader: let it drain what QEMU wrote before exiting
                // (SHUTDOWN tells a guest power-off from a crash) before the exit is judged.
                if (_qmp is { } drained)
                    await drained.Closed.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                var exit = ProcessTable.TakeExit(Pid);
                var final = StopRequested || GuestShutdown ? VmStatus.Stopped : VmStatus.Crashed;
                _exited.TrySetResult(final);
                if (!StopRequested)
                    Log.VmExited(_logger, VmId, Pid, exit?.ToString() ?? "exit status unknown", final);
                if (_qmp is not null)
                    await _qmp.DisposeAsync();
                return;
            }
            if (_qmp is { Closed.IsCompleted: true })
            {
                // The process lives on without our connection (it is exiting, or is stuck): reconnect after a grace period.
                lostQmpAt ??= DateTime.UtcNow;
                if (DateTime.UtcNow - lostQmpAt > TimeSpan.FromSeconds(2))
                {
                    await _qmp.DisposeAsync();
                    _qmp = null;
                }
            }
            if (_qmp is null && ProcessTable.ReadState(Pid) is not 'T')
            {
                try
                {
                    _qmp = await QmpClient.ConnectAsync(QmpSocket, TimeSpan.FromSeconds(1), OnEvent, _stop.Token);
                    lostQmpAt = null;
                    await RefreshStatusAsync(_stop.Token);
                }
                catch (Exception e) when (e is IOException or TimeoutException or System.Net.Sockets.SocketException or QmpException)
                {
                    SetStatus(VmStatus.Unresponsive, "no QMP answer");
                }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    /// <summary>Stops watching and closes the QMP connection; QEMU keeps running (the agent may be restarting).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_watch is not null)
            await _watch.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_qmp is not null)
            await _qmp.DisposeAsync();
    }
}
