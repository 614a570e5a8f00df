using Kvm.Agent;
using Kvm.Agent.Host;
using Kvm.Client;
using Microsoft.Extensions.Logging;

namespace Kvm.Cli.Tests.Support;

/// <summary>
/// A real kvm-agent in-process on 127.0.0.1:0 over short temp directories (QMP socket paths stay under 108 bytes), as
/// tests/Kvm.Agent.Tests starts it. Disposing it kills, by PID, every QEMU started under its run directory.
/// </summary>
public sealed class CliAgent : IAsyncDisposable
{
    public const string Token = "cli-test-token-0123456789";

    private CliAgent(AgentHost host, string root)
    {
        Host = host;
        Root = root;
        Client = KvmClient.Create(host.BaseAddress, host.Token);
    }

    public AgentHost Host { get; }
    public KvmClient Client { get; }
    public string Root { get; }
    public string RunDir => Path.Combine(Root, "run");
    public Uri Endpoint => Host.BaseAddress;

    public static async Task<CliAgent> StartAsync()
    {
        var root = Directory.CreateTempSubdirectory("kvmc-").FullName;
        var host = await AgentHost.StartAsync(new AgentOptions
        {
            Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            DataDir = Path.Combine(root, "data"),
            RunDir = Path.Combine(root, "run"),
            Accel = "tcg",
            Token = Token,
            LogLevel = LogLevel.Warning,
        });
        return new CliAgent(host, root);
    }

    /// <summary>Everything under the data and run directories with content hashes: "nothing changed" means this is equal.</summary>
    public IReadOnlyList<string> Listing() =>
        [.. new[] { Path.Combine(Root, "data"), RunDir }.Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFileSystemEntries(d, "*", SearchOption.AllDirectories))
            .Select(p => p + (File.Exists(p) ? ":" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(p))) : "/"))
            .Order(StringComparer.Ordinal)];

    /// <summary>Runs kvmctl against this agent.</summary>
    public Task<KvmctlResult> RunAsync(params string[] args) => Kvmctl.RunAsync(args, Kvmctl.Environment(Endpoint.ToString(), Token));

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
        foreach (var pid in QemuPidsUnder(RunDir))
        {
            ProcessTable.Signal(pid, 9);
            await ProcessTable.ReapAsync(pid, TimeSpan.FromSeconds(5));
        }
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    private static IEnumerable<int> QemuPidsUnder(string runDir) =>
        !Directory.Exists(runDir) ? [] :
        Directory.EnumerateFiles(runDir, "qemu.pid", SearchOption.AllDirectories)
            .Select(f => int.TryParse(File.ReadAllText(f).Trim(), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && ProcessTable.IsAlive(pid) && ProcessTable.ReadCommandLine(pid).Any(a => a.Contains(runDir, StringComparison.Ordinal)))
            .ToList();
}
