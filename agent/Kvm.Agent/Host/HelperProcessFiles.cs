using System.Globalization;

namespace Kvm.Agent.Host;

/// <summary>
/// The files a process the agent spawns leaves behind (QEMU, swtpm, dnsmasq, virtiofsd): its pidfile, and the log
/// whose new lines explain a failed start. One reading of each, so every helper process is judged the same way.
/// </summary>
public static class HelperProcessFiles
{
    /// <summary>The PID in a pidfile; null when the file is missing, unreadable or holds no positive number.</summary>
    public static int? ReadPid(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>What a log gained since <paramref name="offset"/>, at most its last <paramref name="maxBytes"/>; "" when unreadable.</summary>
    public static string ReadTail(string path, long offset, int maxBytes = 2048)
    {
        try
        {
            using var stream = File.OpenRead(path);
            stream.Seek(Math.Max(offset, stream.Length - maxBytes), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Trim();
        }
        catch (IOException) { return ""; }
    }

    /// <summary>
    /// Waits until <paramref name="pid"/> has exited (a zombie counts), reaping it when it is the agent's own child
    /// (one a previous agent started is reaped by init); false when it still runs at the deadline.
    /// </summary>
    public static async Task<bool> WaitForExitAsync(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (!ProcessTable.IsAlive(pid) || ProcessTable.ReadState(pid) == 'Z')
            {
                await ProcessTable.ReapAsync(pid, TimeSpan.FromMilliseconds(200));
                ProcessTable.TakeExit(pid);
                return true;
            }
            if (DateTime.UtcNow >= deadline)
                return false;
            await Task.Delay(10);
        }
    }

    /// <summary>
    /// Stops a helper process by PID: SIGTERM, then SIGKILL after <paramref name="grace"/> (5 s by default), each only
    /// while <paramref name="isOurs"/> still holds (PIDs get reused), waiting for the exit. True when SIGKILL was needed.
    /// </summary>
    public static async Task<bool> TerminateAsync(int pid, Func<bool> isOurs, TimeSpan? grace = null)
    {
        if (isOurs())
            ProcessTable.Signal(pid, Posix.SIGTERM);
        if (await WaitForExitAsync(pid, grace ?? TimeSpan.FromSeconds(5)) || !isOurs())
            return false;
        ProcessTable.Signal(pid, Posix.SIGKILL);
        await WaitForExitAsync(pid, TimeSpan.FromSeconds(5));
        return true;
    }
}
