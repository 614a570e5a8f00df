using System.Collections.Concurrent;
using Kvm.Agent.Host;

namespace Kvm.Agent.Tests.Storage;

/// <summary>The agent's real command runner, recording every argv so tests can check what ran (e.g. the netns prefix).</summary>
public sealed class TestCommandRunner : ICommandRunner
{
    private readonly CommandRunner _inner = new();

    /// <summary>Every argv run, in order.</summary>
    public ConcurrentQueue<IReadOnlyList<string>> Calls { get; } = new();

    public Task<CommandResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        Calls.Enqueue([.. argv]);
        return _inner.RunAsync(argv, timeout, cancellationToken);
    }

    public int SpawnDetached(IReadOnlyList<string> argv, string logPath)
    {
        Calls.Enqueue([.. argv]);
        return _inner.SpawnDetached(argv, logPath);
    }

    /// <summary>Runs a test setup command and fails the test when it fails.</summary>
    public async Task RunCheckedAsync(params string[] argv)
    {
        var result = await RunAsync(argv, TimeSpan.FromSeconds(30));
        if (!result.Ok)
            throw new InvalidOperationException($"{string.Join(' ', argv)} failed ({result.ExitCode}): {result.StdErr}");
    }
}
