using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Health;

namespace Kvm.Protocol.GoPlugin;

/// <summary>The plugin refused to start: wrong cookie or no common protocol version.</summary>
public sealed class GoPluginHandshakeException : Exception
{
    public GoPluginHandshakeException(string message)
        : base(message)
    {
    }

    public GoPluginHandshakeException()
    {
    }

    public GoPluginHandshakeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Serves a <see cref="GrpcRouter"/> the way a HashiCorp go-plugin host (Terraform) expects:
/// cookie check, protocol 6, unix socket (or 127.0.0.1) with AutoMTLS, the handshake line on
/// stdout, and go-plugin's side services (controller, stdio, broker, health).
/// </summary>
public sealed class GoPluginServer : IAsyncDisposable
{
    public const int CoreProtocolVersion = 1;
    public const int AppProtocolVersion = 6;

    /// <summary>Well under go-plugin's 2 s kill timeout after Shutdown.</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan ExitDeadline = TimeSpan.FromMilliseconds(1500);

    private readonly CancellationTokenSource _shutdown = new();
    private readonly TaskCompletionSource _shutdownTask = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private GrpcServer? _server;
    private string? _socketDirectory;
    private X509Certificate2? _serverCertificate;
    private byte[]? _serverCertificateDer;
    private SpareCertificates? _spares;
    private int _disposed;

    private GoPluginServer()
    {
        _shutdown.Token.Register(() => _shutdownTask.TrySetResult());
    }

    /// <summary>The line printed on stdout, without the newline: 1|6|unix|/path|grpc|cert.</summary>
    public string HandshakeLine { get; private set; } = string.Empty;

    /// <summary>"unix" or "tcp".</summary>
    public string Network { get; private set; } = string.Empty;

    /// <summary>Socket path, or 127.0.0.1:port.</summary>
    public string Address { get; private set; } = string.Empty;

    /// <summary>
    /// The AutoMTLS server certificate (with its key when made by this process, public only when it
    /// was a spare); null when serving plaintext.
    /// </summary>
    public X509Certificate2? ServerCertificate =>
        _serverCertificate ??= _serverCertificateDer is null ? null : X509CertificateLoader.LoadCertificate(_serverCertificateDer);


    /// <summary>Cancelled on GRPCController.Shutdown or SIGTERM; the host then exits.</summary>
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

    /// <summary>
    /// The process entry point: returns the exit code. Prints a friendly message and returns 1
    /// when started by hand; otherwise prints the handshake and serves until Shutdown/SIGTERM.
    /// SIGINT is ignored (Terraform forwards Ctrl-C and then calls StopProvider), stdin is never read.
    /// </summary>
    public static async Task<int> RunAsync(string pluginName, Action<GrpcRouter, GoPluginServer> configure, GoPluginSettings? settings = null)
    {
        settings ??= GoPluginSettings.FromEnvironment();
        if (!settings.HasValidCookie)
        {
            await Console.Error.WriteLineAsync(
                $"{pluginName} is a Terraform plugin: it is started by terraform, not run by hand.\n" +
                "Declare it in a required_providers block and run terraform init, then terraform plan or apply.")
                .ConfigureAwait(false);
            return 1;
        }
        GoPluginServer? server = null;
        var terminate = false;
        using var sigint = PluginProcess.Handle(PosixSignal.SIGINT, null);
        using var sigterm = PluginProcess.Handle(PosixSignal.SIGTERM, () =>
        {
            terminate = true;
            server?.RequestShutdown();
        });
        try
        {
            server = await StartAsync(settings, configure).ConfigureAwait(false);
        }
        catch (GoPluginHandshakeException e)
        {
            await Console.Error.WriteLineAsync("[ERROR] " + e.Message).ConfigureAwait(false);
            return 1;
        }
        if (terminate)
        {
            server.RequestShutdown();
        }
        using (var stdout = Console.OpenStandardOutput())
        {
            PluginProcess.WriteHandshake(stdout, server.HandshakeLine);
        }
        server.AfterHandshakeLine();
        await server.WaitForShutdownAsync().ConfigureAwait(false);
        using var watchdog = PluginProcess.Watchdog(ExitDeadline, server.DeleteSocketDirectory);
        await server.DisposeAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>Starts serving in-process (tests, or a host that prints the line itself).</summary>
    public static async Task<GoPluginServer> StartAsync(
        GoPluginSettings settings, Action<GrpcRouter, GoPluginServer> configure, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(configure);
        if (!settings.HasValidCookie)
        {
            throw new GoPluginHandshakeException($"the magic cookie ({GoPluginSettings.MagicCookieKey}) is missing or wrong");
        }
        if (!settings.Offers(AppProtocolVersion))
        {
            throw new GoPluginHandshakeException(
                $"this plugin speaks protocol {AppProtocolVersion} only; the host offers {settings.ProtocolVersions}. Use Terraform 1.0 or later.");
        }

        var plugin = new GoPluginServer();
        try
        {
            // OpenSSL's first use costs ~100 ms of CPU. A spare certificate keeps it off the path to the
            // handshake line; without one, making the certificate runs while Kestrel starts.
            var spares = settings.ClientCertificatePem is null || settings.SpareCertificateDirectory is null
                ? null
                : new SpareCertificates(settings.SpareCertificateDirectory);
            var spare = spares?.TryClaim();
            var certificateTask = settings.ClientCertificatePem is null || spare is not null
                ? null
                : Task.Run(() => PluginCertificate.CreateServerCertificate(), cancellationToken);
            var router = new GrpcRouter();
            plugin.MapSideServices(router);
            configure(router, plugin);

            Func<X509Certificate2, bool>? pin = null;
            if (settings.ClientCertificatePem is { } pem)
            {
                var clientCerts = PluginCertificate.ParsePemCertificates(pem);
                if (clientCerts.Count == 0)
                {
                    throw new GoPluginHandshakeException("PLUGIN_CLIENT_CERT holds no PEM certificate");
                }
                pin = PluginCertificate.PinTo(clientCerts);
            }

            EndPoint endPoint;
            if (settings.UseTcp)
            {
                endPoint = new IPEndPoint(IPAddress.Loopback, 0);
            }
            else
            {
                plugin._socketDirectory = CreatePrivateDirectory(settings.UnixSocketDirectory);
                endPoint = new UnixDomainSocketEndPoint(Path.Combine(plugin._socketDirectory, "plugin.sock"));
            }

            plugin._server = await GrpcServer.StartAsync(router, new GrpcServerOptions
            {
                EndPoint = endPoint,
                ServerCertificateTask = certificateTask,
                DeferredServerCertificate = spare is null ? null : spare.ToCertificate,
                ClientCertificateValidator = pin,
            }, cancellationToken).ConfigureAwait(false);
            if (certificateTask is not null)
            {
                plugin._serverCertificate = await certificateTask.ConfigureAwait(false);
                plugin._serverCertificateDer = plugin._serverCertificate.RawData;
            }
            plugin._serverCertificateDer ??= spare?.CertificateDer;
            plugin._spares = spares;

            (plugin.Network, plugin.Address) = plugin._server.BoundEndPoint switch
            {
                IPEndPoint ip => ("tcp", ip.ToString()),
                UnixDomainSocketEndPoint unix => ("unix", unix.ToString()),
                var other => throw new InvalidOperationException($"unexpected endpoint {other}"),
            };
            var cert = plugin._serverCertificateDer is null ? string.Empty : GrpcWire.ToUnpaddedBase64(plugin._serverCertificateDer);
            plugin.HandshakeLine = $"{CoreProtocolVersion}|{AppProtocolVersion}|{plugin.Network}|{plugin.Address}|grpc|{cert}";
            return plugin;
        }
        catch
        {
            await plugin.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Work the handshake line must not wait for: the TLS context of a spare certificate, then the
    /// next start's spares (OpenSSL is loaded by then, so they are cheap).
    /// </summary>
    public void AfterHandshakeLine()
    {
        if (_server?.StartTls() is { } tlsReady && _spares is { } spares)
        {
            _ = tlsReady.ContinueWith(_ => spares.Refill(), CancellationToken.None, TaskContinuationOptions.DenyChildAttach, TaskScheduler.Default);
        }
    }

    private void MapSideServices(GrpcRouter router)
    {
        router.Unary("/plugin.GRPCController/Shutdown", Empty.Parser, (_, call) =>
        {
            // Stop only once the reply has gone out, or the host logs a failed Shutdown.
            call.HttpContext.Response.OnCompleted(() =>
            {
                RequestShutdown();
                return Task.CompletedTask;
            });
            return Task.FromResult(new Empty());
        });
        // Logs go to stderr directly, so the stdio stream only has to stay open.
        router.ServerStreaming<Google.Protobuf.WellKnownTypes.Empty, StdioData>(
            "/plugin.GRPCStdio/StreamStdio", Google.Protobuf.WellKnownTypes.Empty.Parser,
            (_, _, call) => Task.Delay(Timeout.Infinite, call.CancellationToken));
        // Providers never broker sub-connections; drain whatever arrives until the host hangs up.
        router.DuplexStreaming<ConnInfo, ConnInfo>("/plugin.GRPCBroker/StartStream", ConnInfo.Parser, async (requests, _, call) =>
        {
            await foreach (var unused in requests.ConfigureAwait(false))
            {
            }
        });
        router.Unary("/grpc.health.v1.Health/Check", HealthCheckRequest.Parser, (request, _) =>
            request.Service is "" or "plugin"
                ? Task.FromResult(new HealthCheckResponse { Status = HealthCheckResponse.Types.ServingStatus.Serving })
                : throw new GrpcException(StatusCode.NotFound, $"unknown service '{request.Service}'"));
    }

    private static string CreatePrivateDirectory(string? baseDirectory)
    {
        var parent = baseDirectory ?? Path.GetTempPath();
        // sun_path holds 108 bytes; a deep TMPDIR would make the bind fail.
        if (Path.Combine(parent, "kvm-plugin-XXXXXXXX", "plugin.sock").Length > 100)
        {
            parent = "/tmp";
        }
        for (var attempt = 0; ; attempt++)
        {
            var path = Path.Combine(parent, "kvm-plugin-" + Path.GetRandomFileName().Replace(".", "", StringComparison.Ordinal)[..8]);
            try
            {
                if (Directory.Exists(path))
                {
                    continue;
                }
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(path);
                }
                else
                {
                    // Private: the socket is the only thing guarding the plugin when TLS is off.
                    Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
                return path;
            }
            catch (IOException) when (attempt < 5)
            {
                // Lost a race for the name; pick another.
            }
        }
    }

    private void DeleteSocketDirectory()
    {
        var directory = Interlocked.Exchange(ref _socketDirectory, null);
        if (directory is null)
        {
            return;
        }
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the directory lives in TMPDIR.
        }
        catch (UnauthorizedAccessException)
        {
            // Same.
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
        DeleteSocketDirectory();
        _serverCertificate?.Dispose();
        _shutdown.Dispose();
    }
}
