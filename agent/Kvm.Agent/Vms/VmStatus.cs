namespace Kvm.Agent.Vms;

/// <summary>The observed states a VM reports in <c>status</c>.</summary>
public static class VmStatus
{
    /// <summary>QEMU runs the guest.</summary>
    public const string Running = "running";
    /// <summary>QEMU runs, the guest is paused (suspend, or a pause QEMU did not explain).</summary>
    public const string Paused = "paused";
    /// <summary>No QEMU process.</summary>
    public const string Stopped = "stopped";
    /// <summary>QEMU died without being asked to and without a guest power-off.</summary>
    public const string Crashed = "crashed";
    /// <summary>The guest stopped on an emulation failure (e.g. firmware on a nested host).</summary>
    public const string InternalError = "internal-error";
    /// <summary>The guest stopped on a disk I/O error (e.g. ENOSPC); resume after fixing it.</summary>
    public const string IoError = "io-error";
    /// <summary>The guest kernel panicked.</summary>
    public const string GuestPanicked = "guest-panicked";
    /// <summary>QEMU runs but does not answer on QMP.</summary>
    public const string Unresponsive = "unresponsive";

    /// <summary>Maps a QMP RunState to our status.</summary>
    public static string FromRunState(string? runState) => runState switch
    {
        "running" => Running,
        "io-error" => IoError,
        "internal-error" => InternalError,
        "guest-panicked" => GuestPanicked,
        "shutdown" => Stopped,
        _ => Paused,
    };
}
