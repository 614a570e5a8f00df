using System.Globalization;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Vms;

/// <summary>
/// One <c>virtiofsd</c> per shared directory of a running VM: started before its QEMU (which connects to the daemon's
/// socket while it starts), recorded by PID in the run directory, and killed by that PID when the VM's QEMU is gone.
/// </summary>
public static class VirtiofsDaemons
{
    /// <summary>Where virtiofsd lives: Debian's virtiofsd package (the Rust daemon), then QEMU's own (C) daemon.</summary>
    public static readonly string[] Candidates = ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"];

    private const string PidSuffix = ".virtiofsd.pid";

    /// <summary>The installed daemon, or null.</summary>
    public static string? FindBinary() => Candidates.FirstOrDefault(File.Exists);

    /// <summary>Whether <paramref name="binary"/> is the Rust daemon (long options; it can share read-only).</summary>
    public static bool IsRust(string binary) => binary.StartsWith("/usr/libexec/", StringComparison.Ordinal);

    /// <summary>The daemon's argv for one share (effective spec: defaults filled).</summary>
    public static IReadOnlyList<string> Argv(string binary, SharedDirSpec share, string socket)
    {
        ArgumentNullException.ThrowIfNull(binary);
        ArgumentNullException.ThrowIfNull(share);
        // The agent runs as root: chroot(2) into the share is the sandbox that also works inside containers.
        if (IsRust(binary))
        {
            List<string> argv = [binary, "--socket-path", socket, "--shared-dir", share.Path!, "--cache", share.Cache!, "--sandbox", "chroot"];
            if (share.Xattr == true) argv.Add("--xattr");
            if (share.ReadOnly == true) argv.Add("--readonly");
            return argv;
        }
        return [binary, "--socket-path=" + socket, "-o", "source=" + share.Path, "-o", "cache=" + (share.Cache == "never" ? "none" : share.Cache),
            "-o", share.Xattr == true ? "xattr" : "no_xattr", "-o", "sandbox=chroot"];
    }

    /// <summary>Starts the daemons of <paramref name="spec"/>'s shares and waits until each listens; on failure none is left running.</summary>
    public static async Task StartAsync(ICommandRunner runner, VmSpec spec, VmPaths paths, string logPath, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(paths);
        var shares = spec.SharedDirs ?? [];
        if (shares.Count == 0)
            return;
        var binary = FindBinary();
        var errors = new List<ProblemError>();
        foreach (var (slot, share) in shares)
        {
            var at = AttrPath.Root.Attr("shared_dirs").Key(slot);
            if (binary is null)
                errors.Add(new ProblemError(at.ToString(), "virtiofsd is not installed on this host (Debian: the virtiofsd or qemu-system-common package)."));
            else if (share.ReadOnly == true && !IsRust(binary))
                errors.Add(new ProblemError(at.Attr("read_only").ToString(), $"this host's virtiofsd ({binary}) cannot share read-only; install the virtiofsd package."));
        }
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors, "The VM's shared directories cannot be served on this host.");
        try
        {
            foreach (var (slot, share) in shares)
            {
                var socket = QemuCommand.VirtiofsSocket(paths, slot);
                File.Delete(socket);
                var pid = runner.SpawnDetached(Argv(binary!, share, socket), logPath);
                await File.WriteAllTextAsync(Path.Combine(paths.RunDir, slot + PidSuffix), pid.ToString(CultureInfo.InvariantCulture), cancellationToken);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                while (!Posix.IsSocket(socket))
                {
                    if (!ProcessTable.IsAlive(pid) || ProcessTable.ReadState(pid) == 'Z' || DateTime.UtcNow > deadline)
                        throw AgentProblemException.HostCommand($"virtiofsd for {slot} ({share.Path}) did not start listening; see the VM's QEMU log.");
                    await Task.Delay(5, cancellationToken);
                }
            }
        }
        catch
        {
            await StopAsync(paths.RunDir);
            throw;
        }
    }

    /// <summary>Kills (by recorded PID, checked against its command line) and reaps every daemon of the VM whose run directory this is. Idempotent.</summary>
    public static async Task StopAsync(string runDir)
    {
        if (!Directory.Exists(runDir))
            return;
        foreach (var file in Directory.EnumerateFiles(runDir, "*" + PidSuffix))
        {
            var slot = Path.GetFileName(file)[..^PidSuffix.Length];
            var socket = Path.Combine(runDir, slot + ".sock");
            if (HelperProcessFiles.ReadPid(file) is { } pid)
            {
                if (ProcessTable.ReadCommandLine(pid).Any(a => a.Contains(socket, StringComparison.Ordinal)))
                {
                    ProcessTable.Signal(pid, Posix.SIGKILL);
                    await ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(2));
                }
                ProcessTable.TakeExit(pid); // also when it ended on its own (it exits when QEMU disconnects) and was reaped already
            }
            File.Delete(file);
        }
    }

    /// <summary>PIDs of the daemons recorded in a run directory that are still alive (for tests and leftovers checks).</summary>
    public static IReadOnlyList<int> LivePids(string runDir) =>
        !Directory.Exists(runDir) ? [] :
        [.. Directory.EnumerateFiles(runDir, "*" + PidSuffix)
            .Select(f => HelperProcessFiles.ReadPid(f) ?? 0)
            .Where(p => p > 0 && ProcessTable.IsAlive(p) && ProcessTable.ReadState(p) != 'Z')];
}
