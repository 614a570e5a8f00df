using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Kvm.Agent.Host;

/// <summary>
/// Runs host commands from argv arrays. Short commands go through <see cref="Process"/> with a deadline;
/// QEMU is spawned with posix_spawn in a new session so it outlives the agent and its seccomp sandbox
/// (<c>spawn=deny</c>) works, which <c>-daemonize</c> would break.
/// </summary>
public sealed class CommandRunner : ICommandRunner
{
    // Children see a small fixed environment: nothing of the agent's (its token included) leaks into them.
    private static readonly string[] ChildEnvironment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"];

    /// <inheritdoc />
    public async Task<CommandResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfZero(argv.Count);
        var start = new ProcessStartInfo(argv[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in argv.Skip(1))
            start.ArgumentList.Add(arg);
        start.Environment.Clear();
        foreach (var variable in ChildEnvironment)
            start.Environment[variable[..variable.IndexOf('=')]] = variable[(variable.IndexOf('=') + 1)..];

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return new CommandResult(127, "", $"{argv[0]}: {e.Message}");
        }
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await process.WaitForExitAsync(CancellationToken.None);
            cancellationToken.ThrowIfCancellationRequested();
            return new CommandResult(124, await stdout, (await stderr) + $"\n{argv[0]}: killed after {timeout.TotalSeconds:0.#} s");
        }
        return new CommandResult(process.ExitCode, await stdout, await stderr);
    }

    /// <inheritdoc />
    public int SpawnDetached(IReadOnlyList<string> argv, string logPath)
    {
        ArgumentOutOfRangeException.ThrowIfZero(argv.Count);
        var allocations = new List<IntPtr>();
        IntPtr Utf8(string s)
        {
            var p = Marshal.StringToCoTaskMemUTF8(s);
            allocations.Add(p);
            return p;
        }
        IntPtr Array(IEnumerable<string> items)
        {
            var list = items.ToList();
            var block = Marshal.AllocHGlobal(IntPtr.Size * (list.Count + 1));
            for (var i = 0; i < list.Count; i++)
                Marshal.WriteIntPtr(block, i * IntPtr.Size, Utf8(list[i]));
            Marshal.WriteIntPtr(block, list.Count * IntPtr.Size, IntPtr.Zero);
            return block;
        }

        // Opaque glibc structures (posix_spawnattr_t is 336 bytes, file actions 80, sigset_t 128): generous buffers.
        var attr = Marshal.AllocHGlobal(1024);
        var actions = Marshal.AllocHGlobal(1024);
        var emptySet = Marshal.AllocHGlobal(256);
        var fullSet = Marshal.AllocHGlobal(256);
        var argvBlock = Array(argv);
        var envBlock = Array(ChildEnvironment);
        try
        {
            Check(Posix.posix_spawnattr_init(attr), "posix_spawnattr_init");
            Check(Posix.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Posix.sigemptyset(emptySet);
            Posix.sigfillset(fullSet);
            // A new session (no controlling terminal, no agent signals); the agent's blocked and ignored
            // signals (SIGPIPE) must not be inherited by QEMU.
            Check(Posix.posix_spawnattr_setflags(attr, (short)(Posix.POSIX_SPAWN_SETSID | Posix.POSIX_SPAWN_SETSIGMASK | Posix.POSIX_SPAWN_SETSIGDEF)), "setflags");
            Check(Posix.posix_spawnattr_setsigmask(attr, emptySet), "setsigmask");
            Check(Posix.posix_spawnattr_setsigdefault(attr, fullSet), "setsigdefault");
            Check(Posix.posix_spawn_file_actions_addopen(actions, 0, Utf8("/dev/null"), Posix.O_RDONLY, 0), "addopen stdin");
            Check(Posix.posix_spawn_file_actions_addopen(actions, 1, Utf8(logPath), Posix.O_WRONLY | Posix.O_CREAT | Posix.O_APPEND, 0b110_100_000), "addopen log");
            Check(Posix.posix_spawn_file_actions_adddup2(actions, 1, 2), "adddup2");
            var rc = Posix.posix_spawnp(out var pid, Marshal.ReadIntPtr(argvBlock), actions, attr, argvBlock, envBlock);
            if (rc != 0)
                throw new Win32Exception(rc, $"cannot start {argv[0]}: {new Win32Exception(rc).Message}");
            ProcessTable.Forget(pid);
            return pid;
        }
        finally
        {
            Posix.posix_spawn_file_actions_destroy(actions);
            Posix.posix_spawnattr_destroy(attr);
            Marshal.FreeHGlobal(attr);
            Marshal.FreeHGlobal(actions);
            Marshal.FreeHGlobal(emptySet);
            Marshal.FreeHGlobal(fullSet);
            Marshal.FreeHGlobal(argvBlock);
            Marshal.FreeHGlobal(envBlock);
            foreach (var p in allocations)
                Marshal.FreeCoTaskMem(p);
        }
    }

    private static void Check(int rc, string what)
    {
        if (rc != 0)
            throw new Win32Exception(rc, $"{what} failed");
    }
}
