using System.Runtime.InteropServices;
using System.Text;

namespace Kvm.Protocol;

/// <summary>Process-level plumbing shared by both plugin hosts.</summary>
internal static class PluginProcess
{
    /// <summary>
    /// Writes the one handshake line straight to fd 1 and flushes: the host reads stdout up
    /// to the first newline, and anything before it breaks the start.
    /// </summary>
    public static void WriteHandshake(Stream stdout, string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        stdout.Write(bytes);
        stdout.Flush();
    }

    /// <summary>Registers a signal handler that suppresses the default action (termination).</summary>
    public static PosixSignalRegistration Handle(PosixSignal signal, Action? action) =>
        PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            action?.Invoke();
        });

    /// <summary>
    /// Ends the process after <paramref name="delay"/> whatever is still running, so a stuck
    /// handler cannot make the host wait for its kill timeout.
    /// </summary>
    public static Timer Watchdog(TimeSpan delay, Action beforeExit) =>
        new(_ =>
        {
            try
            {
                beforeExit();
            }
            finally
            {
                Environment.Exit(0);
            }
        }, null, delay, Timeout.InfiniteTimeSpan);
}
