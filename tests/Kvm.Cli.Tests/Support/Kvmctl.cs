using System.Diagnostics;

namespace Kvm.Cli.Tests.Support;

/// <summary>One run of the kvmctl binary.</summary>
public sealed record KvmctlResult(IReadOnlyList<string> Args, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"kvmctl {string.Join(' ', Args)} → exit {ExitCode}\n--- stdout\n{Stdout}--- stderr\n{Stderr}";
}

/// <summary>Runs the real kvmctl executable (built with the tests, from sdk/Kvm.Cli's own output directory) as a process.</summary>
public static class Kvmctl
{
    private static readonly Lazy<string> Binary = new(Locate);

    public static string Path => Binary.Value;

    /// <summary>A clean environment for kvmctl: no inherited KVM_* settings, no colours.</summary>
    public static Dictionary<string, string?> Environment(string? endpoint, string? token)
    {
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["KVM_ENDPOINT"] = endpoint,
            ["KVM_TOKEN"] = token,
            ["KVM_TOKEN_FILE"] = null,
            ["NO_COLOR"] = "1",
        };
        return environment;
    }

    public static async Task<KvmctlResult> RunAsync(IReadOnlyList<string> args, IReadOnlyDictionary<string, string?> environment, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment)
        {
            if (value is null)
                start.Environment.Remove(name);
            else
                start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException($"kvmctl {string.Join(' ', args)} did not finish in time.");
        }
        return new KvmctlResult(args, process.ExitCode, await stdout, await stderr);
    }

    // tests/Kvm.Cli.Tests/bin/<Configuration>/<tfm>/ → sdk/Kvm.Cli/bin/<Configuration>/<tfm>/kvmctl
    private static string Locate()
    {
        if (System.Environment.GetEnvironmentVariable("KVMCTL") is { Length: > 0 } explicitPath)
            return explicitPath;
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var framework = output.Name;
        var configuration = output.Parent!.Name;
        for (var dir = output; dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "sdk", "Kvm.Cli", "bin", configuration, framework, "kvmctl");
            if (File.Exists(candidate) && File.Exists(candidate + ".dll"))
                return candidate;
        }
        throw new InvalidOperationException($"kvmctl is not built for {configuration}/{framework}: build sdk/Kvm.Cli (the test project references it).");
    }
}
