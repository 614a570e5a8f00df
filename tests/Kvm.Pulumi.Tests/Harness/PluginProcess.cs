using System.Diagnostics;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumirpc;

namespace Kvm.Pulumi.Tests.Harness;

/// <summary>
/// pulumi-resource-kvm started the way the Pulumi engine starts it: the engine address as the only
/// argument, the working directory of the program, its own process group, the port read byte by
/// byte up to the first newline, stdout and stderr drained afterwards; shut down with Cancel,
/// SIGINT to the group, 5 s, then SIGKILL to the group.
/// </summary>
internal sealed class PluginProcess : IAsyncDisposable
{
    public static readonly TimeSpan KillAfter = TimeSpan.FromSeconds(5);

    private readonly Process _process;
    private readonly StringBuilder _stdoutAfterPort = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task _drain;

    private PluginProcess(Process process, int port, Task drain)
    {
        _process = process;
        Port = port;
        _drain = drain;
        Client = GrpcClient.CreateInsecure("127.0.0.1:" + port);
    }

    public int Port { get; }

    public int Pid => _process.Id;

    public GrpcClient Client { get; }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Anything the plugin wrote to stdout after the port line (should stay empty).</summary>
    public string StdoutAfterPort
    {
        get
        {
            lock (_stdoutAfterPort)
                return _stdoutAfterPort.ToString();
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
                return _stderr.ToString();
        }
    }

    /// <summary>The published (or built) plugin: <c>KVM_PULUMI_PLUGIN</c>, else the apphost next to the tests' build of Kvm.Pulumi.</summary>
    public static string BinaryPath
    {
        get
        {
            if (Environment.GetEnvironmentVariable("KVM_PULUMI_PLUGIN") is { Length: > 0 } configured)
                return configured;
            var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
            return Repo.PathOf("sdk", "Kvm.Pulumi", "bin", configuration, "net10.0", "pulumi-resource-kvm");
        }
    }

    public static async Task<PluginProcess> StartAsync(string engineAddress, IDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        var binary = BinaryPath;
        if (!File.Exists(binary))
            throw new FileNotFoundException("build or publish sdk/Kvm.Pulumi first (or set KVM_PULUMI_PLUGIN)", binary);
        // setsid gives the plugin its own process group, as the engine's setpgid does, so
        // signals to the group reach it and nothing else.
        var start = new ProcessStartInfo("setsid", [binary, engineAddress])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        start.Environment["PULUMI_PROJECT"] = "kvm-tests";
        start.Environment["PULUMI_CONFIG"] = "{}";
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
                start.Environment.Remove(name);
            else
                start.Environment[name] = value;
        }
        var process = Process.Start(start)!;
        try
        {
            var stdout = process.StandardOutput.BaseStream;
            var line = new StringBuilder();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var one = new byte[1];
            while (true)
            {
                var read = await stdout.ReadAsync(one, timeout.Token);
                if (read == 0)
                    throw new InvalidOperationException($"plugin exited before printing its port; stderr: {await process.StandardError.ReadToEndAsync()}");
                if (one[0] == (byte)'\n')
                    break;
                line.Append((char)one[0]);
            }
            var port = int.Parse(line.ToString().Trim(), System.Globalization.CultureInfo.InvariantCulture);
            var plugin = new PluginProcess(process, port, Task.CompletedTask);
            return plugin.WithDrain();
        }
        catch
        {
            Signal(process.Id, "KILL");
            process.Dispose();
            throw;
        }
    }

    private PluginProcess WithDrain()
    {
        _ = Drain(_process.StandardOutput, _stdoutAfterPort);
        _ = Drain(_process.StandardError, _stderr);
        return this;

        static async Task Drain(StreamReader reader, StringBuilder into)
        {
            var buffer = new char[4096];
            int read;
            while ((read = await reader.ReadAsync(buffer)) > 0)
            {
                lock (into)
                    into.Append(buffer, 0, read);
            }
        }
    }

    public Task<TResponse> CallAsync<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        return Client.UnaryAsync("/pulumirpc.ResourceProvider/" + method, request, parser, timeout.Token);
    }

    /// <summary>The engine's liveness probe: Handshake, retried while the plugin is not yet listening.</summary>
    public async Task<ProviderHandshakeResponse> HandshakeAsync(string engineAddress)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                return await CallAsync("Handshake", new ProviderHandshakeRequest
                {
                    EngineAddress = engineAddress,
                    RootDirectory = Path.GetDirectoryName(BinaryPath),
                    ProgramDirectory = Path.GetDirectoryName(BinaryPath),
                    ConfigureWithUrn = true,
                    SupportsViews = true,
                    SupportsRefreshBeforeUpdate = true,
                    InvokeWithPreview = true,
                    AcceptsByteString = true,
                }, ProviderHandshakeResponse.Parser);
            }
            catch (GrpcException e) when (e.StatusCode == StatusCode.Unavailable && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }
        }
    }

    /// <summary>Sends a signal to the plugin's whole process group, as the engine does.</summary>
    public void SignalGroup(string signal) => Signal(-_process.Id, signal);

    private static void Signal(int target, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-s", signal, "--", target.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
        })!;
        kill.WaitForExit();
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// The engine's shutdown: Cancel (5 s budget), close the connection, SIGINT to the group,
    /// wait 5 s, SIGKILL to the group. Returns true when the plugin left before SIGKILL.
    /// </summary>
    public async Task<bool> ShutdownAsync()
    {
        if (_process.HasExited)
            return true;
        try
        {
            using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await Client.UnaryAsync("/pulumirpc.ResourceProvider/Cancel", new Empty(), Empty.Parser, budget.Token);
        }
        catch (Exception e) when (e is GrpcException or OperationCanceledException)
        {
            // The engine carries on with the signals either way.
        }
        Client.Dispose();
        SignalGroup("INT");
        if (await WaitForExitAsync(KillAfter))
            return true;
        SignalGroup("KILL");
        await WaitForExitAsync(TimeSpan.FromSeconds(5));
        return false;
    }

    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync();
        await _drain;
        _process.Dispose();
    }
}
