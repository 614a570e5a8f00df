using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Kvm.Protocol.GoPlugin;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumi;
using Kvm.Protocol.Pulumirpc;
using Kvm.Protocol.Tfplugin6;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace Kvm.Protocol.Tests;

/// <summary>The plugin hosts as real processes: stdout, stderr, signals, exit codes.</summary>
public sealed class PluginProcessTests
{
    private static Process Launch(string mode, IDictionary<string, string?> environment, params string[] args)
    {
        var host = Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
        var info = new ProcessStartInfo(host)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(typeof(Program).Assembly.Location);
        info.ArgumentList.Add(mode);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var name in new[] { GoPluginSettings.MagicCookieKey, "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_CLIENT_CERT", "PLUGIN_UNIX_SOCKET_DIR", "KVM_PLUGIN_NETWORK" })
        {
            info.Environment.Remove(name);
        }
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }
        var process = Process.Start(info)!;
        // Like Terraform with stdin at EOF: the plugin must not take that as a reason to exit.
        process.StandardInput.Close();
        return process;
    }

    private static void Signal(Process process, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private static async Task<bool> ExitsWithin(Process process, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static void Kill(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit();
        }
    }

    [Fact]
    public async Task Started_by_hand_it_explains_itself_and_exits_1()
    {
        using var process = Launch("goplugin", new Dictionary<string, string?>());
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            Assert.True(await ExitsWithin(process, TimeSpan.FromSeconds(30)));

            Assert.Equal(1, process.ExitCode);
            Assert.Equal(string.Empty, await stdout);
            Assert.Contains("Terraform plugin", await stderr, StringComparison.Ordinal);
        }
        finally
        {
            Kill(process);
        }
    }

    [Fact]
    public async Task Go_plugin_prints_only_the_handshake_ignores_sigint_and_exits_on_shutdown()
    {
        using var process = Launch("goplugin", new Dictionary<string, string?>
        {
            [GoPluginSettings.MagicCookieKey] = GoPluginSettings.MagicCookieValue,
            ["PLUGIN_PROTOCOL_VERSIONS"] = "5,6",
        });
        try
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotNull(line);
            var fields = line.Split('|');
            Assert.Equal(["1", "6", "unix"], fields[..3]);
            Assert.Equal(["grpc", ""], fields[4..]);
            var endPoint = new UnixDomainSocketEndPoint(fields[3]);
            using var grpc = new GrpcClient(Clients.CreateInvoker(endPoint, null), Clients.BaseUri(endPoint, tls: false));

            Signal(process, "INT");
            await Task.Delay(300);
            Assert.False(process.HasExited);
            var schema = await grpc.UnaryAsync(Tfplugin6Methods.GetProviderSchema, new GetProviderSchema.Types.Request(), GetProviderSchema.Types.Response.Parser);
            Assert.NotNull(schema.Provider.Block);

            var watch = Stopwatch.StartNew();
            await grpc.UnaryAsync("/plugin.GRPCController/Shutdown", new GoPlugin.Empty(), GoPlugin.Empty.Parser);
            Assert.True(await ExitsWithin(process, TimeSpan.FromSeconds(2)), "still running 2 s after Shutdown");

            Assert.Equal(0, process.ExitCode);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2));
            Assert.Equal(string.Empty, await process.StandardOutput.ReadToEndAsync());
            Assert.False(Directory.Exists(Path.GetDirectoryName(fields[3])), "socket directory left behind");
            await stderr;
        }
        finally
        {
            Kill(process);
        }
    }

    [Fact]
    public async Task Go_plugin_exits_on_sigterm()
    {
        using var process = Launch("goplugin", new Dictionary<string, string?>
        {
            [GoPluginSettings.MagicCookieKey] = GoPluginSettings.MagicCookieValue,
            ["PLUGIN_PROTOCOL_VERSIONS"] = "6",
        });
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("1|6|unix|", line, StringComparison.Ordinal);

            Signal(process, "TERM");

            Assert.True(await ExitsWithin(process, TimeSpan.FromSeconds(3)));
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            Kill(process);
        }
    }

    [Fact]
    public async Task Pulumi_plugin_prints_its_port_reaches_the_engine_and_exits_on_sigint()
    {
        var logged = new TaskCompletionSource<LogRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
        var engineRouter = new GrpcRouter().Unary(PulumiEngineClient.LogMethod, LogRequest.Parser, (request, _) =>
        {
            logged.TrySetResult(request);
            return Task.FromResult(new Empty());
        });
        await using var engine = await GrpcServer.StartAsync(engineRouter, new GrpcServerOptions { EndPoint = new IPEndPoint(IPAddress.Loopback, 0) });

        using var process = Launch("pulumi", new Dictionary<string, string?>(), "--logtostderr", "-v=9", engine.BoundEndPoint.ToString()!);
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Matches("^[0-9]+$", line);
            using var grpc = GrpcClient.CreateInsecure($"127.0.0.1:{line}");

            var info = await grpc.UnaryAsync(ResourceProviderMethods.GetPluginInfo, new Empty(), PluginInfo.Parser);
            var log = await logged.Task.WaitAsync(TimeSpan.FromSeconds(10));
            var unknown = await Assert.ThrowsAsync<GrpcException>(() =>
                grpc.UnaryAsync(ResourceProviderMethods.Handshake, new ProviderHandshakeRequest(), ProviderHandshakeResponse.Parser));

            Assert.Equal("0.1.0", info.Version);
            Assert.Equal("hello from the plugin", log.Message);
            Assert.Equal(LogSeverity.Info, log.Severity);
            Assert.Equal(StatusCode.Unimplemented, unknown.StatusCode);

            Signal(process, "INT");
            Assert.True(await ExitsWithin(process, TimeSpan.FromSeconds(5)));
            Assert.Equal(0, process.ExitCode);
            Assert.Equal(string.Empty, await process.StandardOutput.ReadToEndAsync());
        }
        finally
        {
            Kill(process);
        }
    }
}
