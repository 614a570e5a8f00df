namespace Kvm.Agent;

/// <summary>
/// Every message the agent logs, with stable event ids. Values that may be secret (the token, cloud-init
/// user data) never appear in any of them.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "kvm-agent listening on {Address} (data {DataDir}, run {RunDir}, default accelerator {Accelerator})")]
    public static partial void Listening(ILogger logger, string address, string dataDir, string runDir, string accelerator);

    [LoggerMessage(2, LogLevel.Warning, "No token configured: generated one into {TokenFile} (mode 0600)")]
    public static partial void TokenGenerated(ILogger logger, string tokenFile);

    [LoggerMessage(3, LogLevel.Error, "Unhandled error in {Method} {Path}")]
    public static partial void Unhandled(ILogger logger, Exception exception, string method, string path);

    [LoggerMessage(4, LogLevel.Information, "Rejected {Method} {Path}: missing or wrong bearer token")]
    public static partial void Unauthorized(ILogger logger, string method, string path);

    [LoggerMessage(10, LogLevel.Information, "VM {VmId} ({Name}) created")]
    public static partial void VmCreated(ILogger logger, long vmId, string name);

    [LoggerMessage(11, LogLevel.Information, "VM {VmId} updated: {Changes}")]
    public static partial void VmUpdated(ILogger logger, long vmId, string changes);

    [LoggerMessage(12, LogLevel.Information, "VM {VmId} deleted")]
    public static partial void VmDeleted(ILogger logger, long vmId);

    [LoggerMessage(13, LogLevel.Warning, "VM {VmId}: create rolled back: {Reason}")]
    public static partial void CreateRolledBack(ILogger logger, long vmId, string reason);

    [LoggerMessage(20, LogLevel.Information, "VM {VmId} started: QEMU pid {Pid}, {Accelerator}, running after {Milliseconds} ms")]
    public static partial void VmStarted(ILogger logger, long vmId, int pid, string accelerator, long milliseconds);

    [LoggerMessage(21, LogLevel.Information, "VM {VmId} stopped ({How})")]
    public static partial void VmStopped(ILogger logger, long vmId, string how);

    [LoggerMessage(22, LogLevel.Warning, "VM {VmId}: QEMU pid {Pid} exited on its own ({Exit}); status {Status}")]
    public static partial void VmExited(ILogger logger, long vmId, int pid, string exit, string status);

    [LoggerMessage(23, LogLevel.Information, "VM {VmId}: status {Status} ({Reason})")]
    public static partial void VmStatusChanged(ILogger logger, long vmId, string status, string reason);

    [LoggerMessage(24, LogLevel.Information, "VM {VmId} adopted: QEMU pid {Pid}, status {Status}")]
    public static partial void VmAdopted(ILogger logger, long vmId, int pid, string status);

    [LoggerMessage(25, LogLevel.Warning, "VM {VmId}: pidfile names pid {Pid}, which is not this VM's QEMU; treating the VM as stopped")]
    public static partial void StalePidFile(ILogger logger, long vmId, int pid);

    [LoggerMessage(26, LogLevel.Warning, "VM {VmId}: QEMU pid {Pid} does not answer on QMP; reported unresponsive")]
    public static partial void VmUnresponsive(ILogger logger, Exception? exception, long vmId, int pid);

    [LoggerMessage(27, LogLevel.Warning, "VM {VmId}: live change of {Attribute} failed, left pending: {Reason}")]
    public static partial void LiveChangeFailed(ILogger logger, long vmId, string attribute, string reason);

    [LoggerMessage(28, LogLevel.Warning, "VM {VmId}: cleanup of {What} failed: {Reason}")]
    public static partial void CleanupFailed(ILogger logger, long vmId, string what, string reason);

    [LoggerMessage(30, LogLevel.Warning, "Skipping unreadable VM definition {File}: {Reason}")]
    public static partial void BadDefinition(ILogger logger, string file, string reason);

    [LoggerMessage(31, LogLevel.Information, "Loaded {Count} VM definitions, adopted {Running} running VMs in {Milliseconds} ms")]
    public static partial void Loaded(ILogger logger, int count, int running, long milliseconds);

    [LoggerMessage(80, LogLevel.Information, "VM {VmId}: the guest trimmed its file systems (guest-fstrim) after a disk grew")]
    public static partial void GuestTrimmed(ILogger logger, long vmId);

    [LoggerMessage(81, LogLevel.Warning, "VM {VmId}: guest-fstrim after a disk grew did not work: {Reason}")]
    public static partial void GuestTrimFailed(ILogger logger, long vmId, string reason);

    [LoggerMessage(90, LogLevel.Information, "VM {VmId}: {Slot} plugged in live")]
    public static partial void DevicePlugged(ILogger logger, long vmId, string slot);

    [LoggerMessage(91, LogLevel.Information, "VM {VmId}: {Slot} unplugged live")]
    public static partial void DeviceUnplugged(ILogger logger, long vmId, string slot);

    [LoggerMessage(92, LogLevel.Warning, "VM {VmId}: the guest did not release {Device} within {Seconds} s; its removal stays pending")]
    public static partial void UnplugPending(ILogger logger, long vmId, string device, double seconds);
}
