using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Kvm.Agent.Host;
using Kvm.Agent.Problems;
using Kvm.Agent.Qemu;
using Kvm.Agent.Storage;
using Kvm.Model;

namespace Kvm.Agent.Tpm;

/// <summary>What the agent wrote next to a TPM state it manufactured: the version and the reset generation it was made for.</summary>
public sealed record TpmStateRecord(
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("state_generation")] long StateGeneration);

[JsonSerializable(typeof(TpmStateRecord))]
internal sealed partial class TpmJsonContext : JsonSerializerContext;

/// <summary>
/// One swtpm per VM with a <c>tpm</c>, owned like the VM's QEMU. The state lives in <c>&lt;data-dir&gt;/tpm/&lt;vm_id&gt;</c>
/// (kept across restarts, deleted with the VM, reset only when <c>tpm.state_generation</c> or the version changes, and
/// deleted at the first start after the <c>tpm</c> block was removed). swtpm runs detached in its own session with
/// <c>--terminate</c>, started before QEMU and gone after it: it exits when QEMU closes the data channel, and the agent
/// makes sure of it by PID (pid file checked against /proc: alive, not a zombie, command line naming this VM's socket).
/// A restarted agent finds a running swtpm again the same way; it is never restarted under a running QEMU.
/// </summary>
public sealed class Swtpm(AgentOptions options, ICommandRunner runner, ILogger<Swtpm> logger)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan SetupTimeout = TimeSpan.FromSeconds(60);
    private const string MarkerName = "kvm-tpm.json";
    private const string SetupConfig = "/etc/swtpm_setup.conf";

    /// <summary>The VM's TPM state directory.</summary>
    public string StateDir(long vmId) => Path.Combine(options.DataDir, "tpm", vmId.ToString(CultureInfo.InvariantCulture));

    /// <summary>swtpm's own log.</summary>
    public string LogPath(long vmId) => Path.Combine(options.DataDir, "logs", $"{vmId}.swtpm.log");

    /// <summary>swtpm's pid file in the VM's run directory.</summary>
    public static string PidFile(string runDir) => Path.Combine(runDir, "swtpm.pid");

    /// <summary>The PID of the VM's running swtpm, or null.</summary>
    public static int? PidOf(string runDir)
    {
        if (HelperProcessFiles.ReadPid(PidFile(runDir)) is not { } pid || !ProcessTable.IsAlive(pid) || ProcessTable.ReadState(pid) == 'Z')
            return null;
        return IsOurs(pid, runDir) ? pid : null;
    }

    /// <summary>
    /// Before QEMU starts: makes the TPM state match the spec (deleted when the VM has no TPM any more; manufactured
    /// with swtpm_setup when missing or when its version or generation changed) and starts swtpm. Returns the PID, or
    /// null for a VM without a TPM.
    /// </summary>
    public async Task<int?> StartAsync(long vmId, VmSpec effective, string runDir, CancellationToken cancellationToken)
    {
        // A swtpm of an earlier QEMU of this VM (killed, never connected) must not hold the state or the socket.
        await StopAsync(vmId, runDir);
        if (effective.Tpm is not { } tpm)
        {
            RemoveState(vmId);
            return null;
        }
        var version = tpm.Version ?? "v2.0";
        var stateDir = StateDir(vmId);
        await EnsureStateAsync(vmId, version, tpm.StateGeneration ?? 0, stateDir, cancellationToken);

        var socket = QemuCommand.TpmSocket(runDir);
        var pidFile = PidFile(runDir);
        SafeFile.DeleteQuietly(socket);
        SafeFile.DeleteQuietly(pidFile);
        var log = LogPath(vmId);
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        var logOffset = File.Exists(log) ? new FileInfo(log).Length : 0;
        var argv = new List<string>
        {
            "swtpm", "socket",
            "--tpmstate", $"dir={Escape(stateDir)},mode=0600",
            "--ctrl", $"type=unixio,path={Escape(socket)},mode=0600",
            "--pid", $"file={Escape(pidFile)}",
            "--log", $"file={Escape(log)},level=1",
            "--terminate",
        };
        if (version == "v2.0")
            argv.Add("--tpm2");
        int pid;
        try
        {
            pid = runner.SpawnDetached(argv, log);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw AgentProblemException.HostCommand($"Cannot start swtpm for VM {vmId}: {e.Message} (install the swtpm package).");
        }
        // Ready when it wrote its pid file and listens on the control socket.
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!ProcessTable.IsAlive(pid))
                break;
            if (HelperProcessFiles.ReadPid(pidFile) == pid && File.Exists(socket))
            {
                TpmLog.Started(logger, vmId, pid, version);
                return pid;
            }
            await Task.Delay(10, CancellationToken.None);
        }
        if (ProcessTable.IsAlive(pid))
            ProcessTable.Signal(pid, Posix.SIGKILL);
        await ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(2));
        ProcessTable.TakeExit(pid);
        var tail = HelperProcessFiles.ReadTail(log, logOffset);
        throw AgentProblemException.HostCommand($"swtpm for VM {vmId} did not start: {(tail.Length > 0 ? tail : "no message")}");
    }

    /// <summary>
    /// After QEMU is gone (or when its start failed): swtpm normally exits on its own when QEMU closes the connection;
    /// otherwise SIGTERM, then SIGKILL, by PID only. Idempotent.
    /// </summary>
    public async Task StopAsync(long vmId, string runDir)
    {
        if (PidOf(runDir) is not { } pid)
        {
            SafeFile.DeleteQuietly(PidFile(runDir));
            return;
        }
        var how = "exited with QEMU";
        if (!await HelperProcessFiles.WaitForExitAsync(pid, TimeSpan.FromMilliseconds(500)))
        {
            how = await HelperProcessFiles.TerminateAsync(pid, () => IsOurs(pid, runDir)) ? "killed" : "terminated";
        }
        SafeFile.DeleteQuietly(PidFile(runDir));
        TpmLog.Stopped(logger, vmId, pid, how);
    }

    /// <summary>Deletes the VM's TPM state and log (VM deleted, or its TPM removed). Idempotent.</summary>
    public void RemoveState(long vmId)
    {
        var dir = StateDir(vmId);
        try
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
                TpmLog.StateRemoved(logger, vmId);
            }
        }
        catch (IOException e)
        {
            TpmLog.RemoveFailed(logger, vmId, dir, e.Message);
        }
        SafeFile.DeleteQuietly(LogPath(vmId));
    }

    /// <summary>The record of the state in <paramref name="stateDir"/>, or null when there is none (or it is unreadable).</summary>
    public static TpmStateRecord? ReadRecord(string stateDir)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(stateDir, MarkerName)), TpmJsonContext.Default.TpmStateRecord);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The name of the agent's record inside a TPM state directory (not part of swtpm's state).</summary>
    public static string RecordFileName => MarkerName;

    /// <summary>Writes the record of the state in <paramref name="stateDir"/> atomically (e.g. after a snapshot rollback put an older state there).</summary>
    public static void WriteRecord(string stateDir, TpmStateRecord record) =>
        SafeFile.WriteAtomic(Path.Combine(stateDir, MarkerName), JsonSerializer.SerializeToUtf8Bytes(record, TpmJsonContext.Default.TpmStateRecord));

    private async Task EnsureStateAsync(long vmId, string version, long generation, string stateDir, CancellationToken cancellationToken)
    {
        var record = ReadRecord(stateDir);
        if (record is not null && record.Version == version && record.StateGeneration == generation && StateFileExists(stateDir, version))
            return;
        if (Directory.Exists(stateDir))
        {
            // Version or generation changed (the user asked for a new TPM), or a manufacture was interrupted.
            TpmLog.StateReset(logger, vmId, record?.Version ?? "none", record?.StateGeneration ?? -1, version, generation);
            Directory.Delete(stateDir, recursive: true);
        }
        Directory.CreateDirectory(stateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var argv = SetupArgv(stateDir, version, File.Exists(SetupConfig));
        var result = await runner.RunAsync(argv, SetupTimeout, cancellationToken);
        if (!result.Ok)
        {
            try { Directory.Delete(stateDir, recursive: true); } catch (IOException) { }
            throw AgentProblemException.HostCommand($"swtpm_setup for VM {vmId} failed (exit {result.ExitCode}): {(result.StdErr + result.StdOut).Trim()}");
        }
        // Written last: a state without its record is manufactured again at the next start.
        SafeFile.WriteAtomic(Path.Combine(stateDir, MarkerName),
            JsonSerializer.SerializeToUtf8Bytes(new TpmStateRecord(version, generation), TpmJsonContext.Default.TpmStateRecord));
        TpmLog.Manufactured(logger, vmId, version, generation);
    }

    /// <summary>
    /// swtpm_setup's argv: an endorsement key (RSA for 1.2, ECC and RSA for 2.0), and, where the host has swtpm's
    /// certificate tooling configured, EK and platform certificates from swtpm's local CA; NVRAM locked as a
    /// physical TPM's is. Never overwrites an existing state.
    /// </summary>
    public static IReadOnlyList<string> SetupArgv(string stateDir, string version, bool withCertificates)
    {
        var argv = new List<string> { "swtpm_setup", "--tpm-state", stateDir, "--createek", "--lock-nvram", "--not-overwrite" };
        if (version == "v2.0")
            argv.AddRange(["--tpm2", "--ecc"]);
        if (withCertificates)
            argv.AddRange(["--create-ek-cert", "--create-platform-cert", "--config", SetupConfig]);
        return argv;
    }

    /// <summary>The file swtpm keeps a TPM's permanent state in.</summary>
    public static bool StateFileExists(string stateDir, string version) =>
        File.Exists(Path.Combine(stateDir, version == "v2.0" ? "tpm2-00.permall" : "tpm-00.permall"));

    private static bool IsOurs(int pid, string runDir)
    {
        var socket = "path=" + Escape(QemuCommand.TpmSocket(runDir));
        var argv = ProcessTable.ReadCommandLine(pid);
        return argv.Count > 0 && argv[0].EndsWith("swtpm", StringComparison.Ordinal)
            && argv.Any(a => a.Contains(socket + ",", StringComparison.Ordinal) || a.EndsWith(socket, StringComparison.Ordinal));
    }

    // swtpm parses its options like QEMU: a comma in a value is doubled.
    private static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

}

/// <summary>Log messages of the TPM feature.</summary>
internal static partial class TpmLog
{
    [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "VM {VmId}: swtpm started (pid {Pid}, TPM {Version})")]
    public static partial void Started(ILogger logger, long vmId, int pid, string version);

    [LoggerMessage(EventId = 4202, Level = LogLevel.Information, Message = "VM {VmId}: swtpm pid {Pid} stopped ({How})")]
    public static partial void Stopped(ILogger logger, long vmId, int pid, string how);

    [LoggerMessage(EventId = 4203, Level = LogLevel.Information, Message = "VM {VmId}: TPM {Version} manufactured (state generation {Generation})")]
    public static partial void Manufactured(ILogger logger, long vmId, string version, long generation);

    [LoggerMessage(EventId = 4204, Level = LogLevel.Warning, Message = "VM {VmId}: TPM state reset as asked ({OldVersion} generation {OldGeneration} → {Version} generation {Generation})")]
    public static partial void StateReset(ILogger logger, long vmId, string oldVersion, long oldGeneration, string version, long generation);

    [LoggerMessage(EventId = 4205, Level = LogLevel.Information, Message = "VM {VmId}: TPM state deleted")]
    public static partial void StateRemoved(ILogger logger, long vmId);

    [LoggerMessage(EventId = 4206, Level = LogLevel.Warning, Message = "VM {VmId}: could not delete TPM state {Path}: {Reason}")]
    public static partial void RemoveFailed(ILogger logger, long vmId, string path, string reason);
}
