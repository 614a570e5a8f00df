using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Kvm.Agent.Host;

/// <summary>How a process ended, when the agent could reap it (null when another process reaped it).</summary>
public sealed record ProcessExit(int? ExitCode, int? Signal)
{
    /// <inheritdoc />
    public override string ToString() => Signal is { } s ? $"killed by signal {s}" : $"exit code {ExitCode}";
}

/// <summary>
/// What /proc and waitpid say about a PID. Pidfiles outlive their process and PIDs get reused, so a PID is
/// only this VM's QEMU when its command line names the VM's QMP socket; a zombie counts as dead.
/// </summary>
public static class ProcessTable
{
    private static readonly ConcurrentDictionary<int, ProcessExit> Reaped = new();

    /// <summary>True while the process exists and has not exited (reaping it if it is our exited child).</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0)
            return false;
        if (Reaped.ContainsKey(pid))
            return false;
        TryReap(pid);
        if (Reaped.ContainsKey(pid))
            return false;
        if (ReadState(pid) is { } state && state is not ('Z' or 'X'))
            return true;
        // It died between the two looks: reap the zombie now if it is ours.
        TryReap(pid);
        return false;
    }

    /// <summary>Reaps <paramref name="pid"/> if it is our child and has exited; false while it is our child and not reapable yet.</summary>
    public static bool TryReap(int pid)
    {
        var result = Posix.waitpid(pid, out var status, Posix.WNOHANG);
        if (result == pid)
        {
            // Linux wait status: low 7 bits are the terminating signal, bits 8–15 the exit code.
            var signal = status & 0x7f;
            Reaped[pid] = signal == 0 ? new ProcessExit((status >> 8) & 0xff, null) : new ProcessExit(null, signal);
        }
        return result != 0;
    }

    /// <summary>
    /// Reaps a child that is dead or dying. A multi-threaded process shows its leader as a zombie while its other
    /// threads still exit, and only then can it be waited for: retry briefly instead of leaving a zombie.
    /// </summary>
    public static async Task ReapAsync(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!TryReap(pid) && DateTime.UtcNow < deadline)
            await Task.Delay(5);
    }

    /// <summary>The exit of a child the agent reaped, once; null when unknown.</summary>
    public static ProcessExit? TakeExit(int pid) => Reaped.TryRemove(pid, out var exit) ? exit : null;

    /// <summary>Forgets a reaped PID so the number can be trusted again if the kernel reuses it.</summary>
    public static void Forget(int pid) => Reaped.TryRemove(pid, out _);

    /// <summary>The process state letter from /proc/&lt;pid&gt;/stat (R, S, D, T, Z, …), or null when it does not exist.</summary>
    public static char? ReadState(int pid)
    {
        var stat = ReadStat(pid);
        return stat is null ? null : stat[0][0];
    }

    /// <summary>Start time of the process in clock ticks since boot (field 22 of /proc/&lt;pid&gt;/stat).</summary>
    public static long? ReadStartTime(int pid)
    {
        var stat = ReadStat(pid);
        return stat is { Length: > 19 } && long.TryParse(stat[19], NumberStyles.None, CultureInfo.InvariantCulture, out var t) ? t : null;
    }

    /// <summary>The process's argv, or empty when it is gone.</summary>
    public static IReadOnlyList<string> ReadCommandLine(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/cmdline");
            return text.Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }

    /// <summary>Sends a signal; false when the process is already gone.</summary>
    public static bool Signal(int pid, int signal) =>
        pid > 0 && (Posix.kill(pid, signal) == 0 || Marshal.GetLastPInvokeError() != Posix.ESRCH);

    // Fields after "(comm)": comm may contain spaces and parentheses, so split after the last ')'.
    private static string[]? ReadStat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            var close = text.LastIndexOf(')');
            return close < 0 ? null : text[(close + 2)..].Split(' ');
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
