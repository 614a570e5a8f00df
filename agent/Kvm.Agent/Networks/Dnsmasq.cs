using System.Globalization;
using System.Text;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Storage;
using Kvm.Model;

namespace Kvm.Agent.Networks;

/// <summary>
/// One dnsmasq per network that wants DHCP or DNS, owned by the agent like a VM's QEMU: started detached (it outlives
/// the agent), recognised again by its pid file checked against /proc (alive, its command line names this network's
/// configuration file), re-configured by a restart when its configuration changes, and only ever signalled by PID.
/// Callers hold <see cref="Bridges.Gate"/>.
/// </summary>
public sealed class Dnsmasq(NetworkOptions options, ICommandRunner runner, ILogger<Dnsmasq> logger)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The files of <paramref name="name"/>'s dnsmasq.</summary>
    public DnsmasqPaths PathsFor(string name) => DnsmasqConfig.PathsFor(options, name);

    /// <summary>The PID of the network's running dnsmasq, or null.</summary>
    public int? PidOf(string name)
    {
        var paths = PathsFor(name);
        if (HelperProcessFiles.ReadPid(paths.PidFile) is not { } pid || !ProcessTable.IsAlive(pid) || ProcessTable.ReadState(pid) == 'Z')
            return null;
        return IsOurs(pid, paths) ? pid : null;
    }

    /// <summary>
    /// Makes the network's dnsmasq match its settings: started when wanted and missing, restarted when its
    /// configuration changed, left alone (same PID) when it is current, stopped when no longer wanted.
    /// </summary>
    public async Task EnsureAsync(NetworkSpec spec, CancellationToken cancellationToken)
    {
        var name = spec.Name!;
        if (!NetworkServiceRules.WantsDnsmasq(spec))
        {
            await StopAsync(name, removeFiles: false);
            SafeFile.DeleteQuietly(PathsFor(name).Config);
            return;
        }
        var paths = PathsFor(name);
        var config = Encoding.UTF8.GetBytes(DnsmasqConfig.Build(spec, paths));
        var current = File.Exists(paths.Config) ? await File.ReadAllBytesAsync(paths.Config, cancellationToken) : null;
        var running = PidOf(name);
        if (running is not null && current is not null && current.AsSpan().SequenceEqual(config))
            return;
        if (running is not null)
            await StopAsync(name, removeFiles: false);
        Directory.CreateDirectory(options.DefinitionsDir);
        Directory.CreateDirectory(options.PidDir);
        SafeFile.WriteAtomic(paths.Config, config);
        await StartAsync(name, paths, cancellationToken);
    }

    /// <summary>Stops the network's dnsmasq (SIGTERM, then SIGKILL, by PID only); with <paramref name="removeFiles"/> its files go too.</summary>
    public async Task StopAsync(string name, bool removeFiles)
    {
        var paths = PathsFor(name);
        if (PidOf(name) is { } pid)
        {
            await HelperProcessFiles.TerminateAsync(pid, () => IsOurs(pid, paths));
            NetworkLog.DnsmasqStopped(logger, name, pid);
        }
        SafeFile.DeleteQuietly(paths.PidFile);
        if (removeFiles)
        {
            foreach (var file in new[] { paths.Config, paths.Leases, paths.Log })
                SafeFile.DeleteQuietly(file);
        }
    }

    /// <summary>At agent start: counts the dnsmasqs still serving (they are adopted, never restarted) and starts missing ones whose bridge exists.</summary>
    public async Task<int> AdoptAsync(IEnumerable<NetworkSpec> networks, IpLink ip, CancellationToken cancellationToken)
    {
        var adopted = 0;
        foreach (var spec in networks.Where(NetworkServiceRules.WantsDnsmasq))
        {
            if (PidOf(spec.Name!) is { } pid)
            {
                adopted++;
                NetworkLog.DnsmasqAdopted(logger, spec.Name!, pid);
                continue;
            }
            try
            {
                if (await ip.ShowAsync(spec.Name!, cancellationToken) is { IsBridge: true })
                    await EnsureAsync(spec, cancellationToken);
            }
            catch (AgentProblemException e)
            {
                NetworkLog.DnsmasqFailed(logger, spec.Name!, e.Message);
            }
        }
        return adopted;
    }

    private async Task StartAsync(string name, DnsmasqPaths paths, CancellationToken cancellationToken)
    {
        SafeFile.DeleteQuietly(paths.PidFile);
        var logOffset = File.Exists(paths.Log) ? new FileInfo(paths.Log).Length : 0;
        int pid;
        try
        {
            pid = runner.SpawnDetached(DnsmasqConfig.Argv(options, paths), paths.Log);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw AgentProblemException.HostCommand($"Cannot start dnsmasq for network \"{name}\": {e.Message}");
        }
        // Ready when it wrote its pid file (after binding its sockets); dead when it refused the configuration.
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (ProcessTable.TryReap(pid) || !ProcessTable.IsAlive(pid))
                break;
            if (HelperProcessFiles.ReadPid(paths.PidFile) == pid)
            {
                NetworkLog.DnsmasqStarted(logger, name, pid);
                return;
            }
            await Task.Delay(20, CancellationToken.None);
        }
        var message = HelperProcessFiles.ReadTail(paths.Log, logOffset);
        if (ProcessTable.IsAlive(pid))
            ProcessTable.Signal(pid, Posix.SIGKILL);
        await ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(2));
        ProcessTable.TakeExit(pid);
        throw AgentProblemException.HostCommand($"dnsmasq for network \"{name}\" did not start: {(message.Length > 0 ? message : "no message")}");
    }

    private static bool IsOurs(int pid, DnsmasqPaths paths) =>
        ProcessTable.ReadCommandLine(pid).Contains("--conf-file=" + paths.Config, StringComparer.Ordinal);

}

/// <summary>Log messages of the network services.</summary>
internal static partial class NetworkLog
{
    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Network {Network}: dnsmasq started (pid {Pid})")]
    public static partial void DnsmasqStarted(ILogger logger, string network, int pid);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "Network {Network}: dnsmasq stopped (pid {Pid})")]
    public static partial void DnsmasqStopped(ILogger logger, string network, int pid);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Information, Message = "Network {Network}: adopted the running dnsmasq (pid {Pid})")]
    public static partial void DnsmasqAdopted(ILogger logger, string network, int pid);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Warning, Message = "Network {Network}: dnsmasq could not be started: {Reason}")]
    public static partial void DnsmasqFailed(ILogger logger, string network, string reason);
}
