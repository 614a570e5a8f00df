using System.Collections.Concurrent;
using System.Diagnostics;
using Kvm.Agent.Host;

namespace Kvm.Agent.Tests.Storage;

/// <summary>
/// A real command runner for these tests until the agent's own is merged: argv straight to execve (no shell),
/// output captured, killed on timeout. Records every argv so tests can check what ran.
/// </summary>
public sealed class TestCommandRunner : ICommandRunner
{
    /// <summary>Every argv run, in order.</summary>
    public ConcurrentQueue<IReadOnlyList<string>> Calls { get; } = new();

    public async Task<CommandResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        Calls.Enqueue([.. argv]);
        var start = new ProcessStartInfo(argv[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in argv.Skip(1))
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {argv[0]}.");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(bounded.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException($"{argv[0]} did not finish within {timeout}.");
        }
        return new CommandResult(process.ExitCode, await stdout, await stderr);
    }

    public int SpawnDetached(IReadOnlyList<string> argv, string logPath) =>
        throw new NotSupportedException("Storage and network tests start no long-lived processes.");

    /// <summary>Runs a test setup command and fails the test when it fails.</summary>
    public async Task RunCheckedAsync(params string[] argv)
    {
        var result = await RunAsync(argv, TimeSpan.FromSeconds(30));
        if (!result.Ok)
            throw new InvalidOperationException($"{string.Join(' ', argv)} failed ({result.ExitCode}): {result.StdErr}");
    }
}
