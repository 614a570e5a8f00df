using System.Net;
using System.Runtime.InteropServices;
using Kvm.Protocol.Grpc;

namespace Kvm.Protocol.Pulumi;

/// <summary>
/// Serves a <see cref="GrpcRouter"/> the way the Pulumi engine launches resource plugins:
/// plaintext HTTP/2 on 127.0.0.1:&lt;free port&gt;, the port alone on stdout, clean exit on
/// SIGINT/SIGTERM (the engine signals the process group after Cancel).
/// </summary>
public sealed class PulumiPluginServer : IAsyncDisposable
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ExitDeadline = TimeSpan.FromSeconds(3);

    private readonly CancellationTokenSource _shutdown = new();
    private readonly TaskCompletionSource _shutdownTask = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _engineLock = new();
    private PulumiEngineClient? _engine;
    private GrpcServer? _server;
    private int _disposed;

    private PulumiPluginServer(PulumiPluginArguments arguments)
    {
        Arguments = arguments;
        EngineAddress = arguments.EngineAddress;
        _shutdown.Token.Register(() => _shutdownTask.TrySetResult());
    }

    public PulumiPluginArguments Arguments { get; }

    /// <summary>From the command line, or later from Handshake/Attach via <see cref="AttachEngine"/>.</summary>
    public string? EngineAddress { get; private set; }

    public int Port { get; private set; }

    /// <summary>A client for the engine's services, or null while no engine address is known.</summary>
    public PulumiEngineClient? Engine
    {
        get
        {
            lock (_engineLock)
            {
                if (_engine is null && EngineAddress is { Length: > 0 } address)
                {
                    _engine = new PulumiEngineClient(address);
                }
                return _engine;
            }
        }
    }

    /// <summary>Records the engine address sent by Handshake or Attach (debug mode).</summary>
    public void AttachEngine(string address)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        lock (_engineLock)
        {
            if (string.Equals(address, EngineAddress, StringComparison.Ordinal))
            {
                return;
            }
            _engine?.Dispose();
            _engine = null;
            EngineAddress = address;
        }
    }

    public CancellationToken ShutdownRequested => _shutdown.Token;

    public void RequestShutdown()
    {
        try
        {
            _shutdown.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already torn down.
        }
    }

    public Task WaitForShutdownAsync() => _shutdownTask.Task;

    /// <summary>The process entry point; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, Action<GrpcRouter, PulumiPluginServer> configure)
    {
        ArgumentNullException.ThrowIfNull(args);
        PulumiPluginServer? server = null;
        var terminate = false;
        void Stop()
        {
            terminate = true;
            server?.RequestShutdown();
        }
        using var sigint = PluginProcess.Handle(PosixSignal.SIGINT, Stop);
        using var sigterm = PluginProcess.Handle(PosixSignal.SIGTERM, Stop);
        server = await StartAsync(PulumiPluginArguments.Parse(args), configure).ConfigureAwait(false);
        if (terminate)
        {
            server.RequestShutdown();
        }
        using (var stdout = Console.OpenStandardOutput())
        {
            PluginProcess.WriteHandshake(stdout, server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        await server.WaitForShutdownAsync().ConfigureAwait(false);
        using var watchdog = PluginProcess.Watchdog(ExitDeadline, () => { });
        await server.DisposeAsync().ConfigureAwait(false);
        return 0;
    }

    public static async Task<PulumiPluginServer> StartAsync(
        PulumiPluginArguments arguments, Action<GrpcRouter, PulumiPluginServer> configure, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(configure);
        var plugin = new PulumiPluginServer(arguments);
        try
        {
            var router = new GrpcRouter
            {
                // The engine itself allows 400 MiB messages.
                MaxReceiveMessageSize = 400L * 1024 * 1024,
            };
            configure(router, plugin);
            // IPv4 loopback only: the engine dials 127.0.0.1:<port>.
            plugin._server = await GrpcServer.StartAsync(router, new GrpcServerOptions
            {
                EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            }, cancellationToken).ConfigureAwait(false);
            plugin.Port = ((IPEndPoint)plugin._server.BoundEndPoint).Port;
            return plugin;
        }
        catch
        {
            await plugin.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        RequestShutdown();
        if (_server is not null)
        {
            await _server.StopAsync(StopGrace).ConfigureAwait(false);
            await _server.DisposeAsync().ConfigureAwait(false);
        }
        lock (_engineLock)
        {
            _engine?.Dispose();
            _engine = null;
        }
        _shutdown.Dispose();
    }
}
