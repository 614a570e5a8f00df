namespace Kvm.Cli;

/// <summary>The exit codes scripts may rely on (docs/cli.md lists them; tests pin them).</summary>
public static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Ok = 0;
    /// <summary>The agent refused or failed the request (including a wrong token).</summary>
    public const int AgentError = 1;
    /// <summary>Bad command line or options, rejected by kvmctl before anything was sent, or by the agent's validation.</summary>
    public const int Usage = 2;
    /// <summary>No such VM, volume, network or pool.</summary>
    public const int NotFound = 3;
    /// <summary>The resource is busy, in the wrong state, protected, or changed since it was read.</summary>
    public const int Conflict = 4;
    /// <summary>A wait ran out of time.</summary>
    public const int Timeout = 5;
    /// <summary>The agent could not be reached (connection refused, name not resolved, no answer, TLS failure).</summary>
    public const int Unreachable = 6;
    /// <summary>The verb exists but its agent feature does not yet (images).</summary>
    public const int NotAvailable = 7;
}

/// <summary>A failure that ends the command with a message for people and a chosen exit code.</summary>
public sealed class CliException(int exitCode, string message, IReadOnlyList<string>? details = null) : Exception(message)
{
    /// <summary>The exit code.</summary>
    public int ExitCode { get; } = exitCode;

    /// <summary>Indented lines under the message (one per offending option).</summary>
    public IReadOnlyList<string> Details { get; } = details ?? [];

    /// <summary>A usage error: nothing was sent.</summary>
    public static CliException Usage(string message, IReadOnlyList<string>? details = null) => new(ExitCodes.Usage, message, details);
}
