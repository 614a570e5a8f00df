namespace Kvm.Agent.Host;

/// <summary>The outcome of a finished command.</summary>
public sealed record CommandResult(int ExitCode, string StdOut, string StdErr)
{
    /// <summary>Exit code 0.</summary>
    public bool Ok => ExitCode == 0;
}

/// <summary>
/// The one place the agent starts processes: argv arrays only, never a shell, so no user value can
/// become shell syntax.
/// </summary>
public interface ICommandRunner
{
    /// <summary>Runs a command to completion (bounded by <paramref name="timeout"/>) and captures its output.</summary>
    Task<CommandResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts a long-lived process detached in its own session (it outlives the agent), with stdin from
    /// /dev/null and stdout+stderr appended to <paramref name="logPath"/>; returns its PID.
    /// </summary>
    int SpawnDetached(IReadOnlyList<string> argv, string logPath);
}
