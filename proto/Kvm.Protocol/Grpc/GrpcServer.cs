using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kvm.Protocol.Grpc;

public sealed class GrpcServerOptions
{
    /// <summary>An <see cref="IPEndPoint"/> (port 0 picks one) or a <see cref="UnixDomainSocketEndPoint"/>.</summary>
    public required EndPoint EndPoint { get; init; }

    /// <summary>When set, the server speaks TLS (ALPN h2); otherwise HTTP/2 with prior knowledge (h2c).</summary>
    public X509Certificate2? ServerCertificate { get; init; }

    /// <summary>
    /// Like <see cref="ServerCertificate"/>, but still being made: the first OpenSSL use costs
    /// ~100 ms of CPU, which the go-plugin host overlaps with Kestrel's start.
    /// </summary>
    internal Task<X509Certificate2>? ServerCertificateTask { get; init; }

    /// <summary>
    /// Like <see cref="ServerCertificateTask"/>, but made only once Kestrel listens: loading a
    /// certificate made ahead of time is the process's first OpenSSL use, which nothing before
    /// the go-plugin handshake line needs.
    /// </summary>
    internal Func<X509Certificate2>? DeferredServerCertificate { get; init; }

    /// <summary>When set (TLS only), a client certificate is required and must satisfy this check.</summary>
    public Func<X509Certificate2, bool>? ClientCertificateValidator { get; init; }
}

/// <summary>
/// A bare KestrelServer serving one <see cref="GrpcRouter"/>: no generic host, no DI container,
/// no configuration, no logging providers (stdout belongs to the plugin handshake) and no signal
/// handling (the plugin hosts decide what SIGINT/SIGTERM mean). Start-up is paid on every
/// plugin launch, and this is the cheapest way Kestrel can be started.
/// </summary>
public sealed class GrpcServer : IAsyncDisposable
{
    /// <summary>
    /// How long a connection may sit without streams (before its first call, or between calls)
    /// before Kestrel closes it with GOAWAY(NO_ERROR). Kestrel's own default (130 s) would drop
    /// the host's idle connections, so this is "never in a plugin's life" — but finite on purpose:
    /// Kestrel stores <see cref="Timeout.InfiniteTimeSpan"/> as <see cref="TimeSpan.MaxValue"/>, and
    /// the HTTP/2 connection adds that to the heartbeat's current timestamp, which overflows into
    /// the past. The keep-alive timeout then fires on the next heartbeat (≤ 1 s), so every new or
    /// idle connection was closed, racing the client's first request on it.
    /// </summary>
    internal static readonly TimeSpan IdleConnectionTimeout = TimeSpan.FromDays(365);

    private readonly KestrelServer _kestrel;
    private readonly CancellationTokenSource _stopping;
    private int _stopped;

    private GrpcServer(KestrelServer kestrel, CancellationTokenSource stopping, EndPoint boundEndPoint)
    {
        _kestrel = kestrel;
        _stopping = stopping;
        BoundEndPoint = boundEndPoint;
    }

    /// <summary>The listening address; for port 0 the port actually bound.</summary>
    public EndPoint BoundEndPoint { get; }

    /// <summary>Cancelled when <see cref="StopAsync"/> starts; every call's token is linked to it.</summary>
    public CancellationToken Stopping => _stopping.Token;

    public static async Task<GrpcServer> StartAsync(GrpcRouter router, GrpcServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(options);
        var certificate = options.ServerCertificateTask
            ?? (options.ServerCertificate is { } c ? Task.FromResult(c) : null);
        var tls = certificate is null && options.DeferredServerCertificate is null
            ? null
            : new TlsContext(certificate, options.DeferredServerCertificate);
        var kestrelOptions = new KestrelServerOptions
        {
            AddServerHeader = false,
            ApplicationServices = EmptyServices.Instance,
            // TLS is done by our middleware, so Kestrel believes the transport is plaintext and
            // would reset every stream whose :scheme is https.
            AllowAlternateSchemes = true,
        };
        var limits = kestrelOptions.Limits;
        limits.MaxRequestBodySize = null;
        // Streams such as StreamStdio idle for the whole process life; data-rate and keep-alive
        // limits would cut them (and the connection) off.
        limits.MinRequestBodyDataRate = null;
        limits.MinResponseDataRate = null;
        limits.KeepAliveTimeout = IdleConnectionTimeout;
        limits.Http2.MaxStreamsPerConnection = 1000;
        // Larger windows let a 20+ MiB schema or state move without a round trip per 64 KiB.
        limits.Http2.InitialConnectionWindowSize = 8 * 1024 * 1024;
        limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
        kestrelOptions.Listen(options.EndPoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            if (tls is not null)
            {
                listen.Use(next => new TlsConnectionMiddleware(next, tls.StartAsync, options.ClientCertificateValidator).OnConnectionAsync);
            }
        });

        var transport = new SocketTransportFactory(Options.Create(new SocketTransportOptions()), NullLoggerFactory.Instance);
        var kestrel = new KestrelServer(Options.Create(kestrelOptions), transport, NullLoggerFactory.Instance);
        var stopping = new CancellationTokenSource();
        try
        {
            await kestrel.StartAsync(new Application(router, stopping.Token), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            kestrel.Dispose();
            stopping.Dispose();
            throw;
        }
        if (certificate is not null)
        {
            // The context's chain build loads the system root store (see CreateSelfSignedContext),
            // which nothing before the go-plugin handshake line needs: it runs while the host reads
            // the line and dials, instead of competing with Kestrel's start.
            _ = tls!.StartAsync();
        }
        return new GrpcServer(kestrel, stopping, ResolveBoundEndPoint(kestrel, options.EndPoint))
        {
            Tls = tls,
        };
    }

    private TlsContext? Tls { get; init; }

    /// <summary>
    /// Starts making the TLS context of a <see cref="GrpcServerOptions.DeferredServerCertificate"/>
    /// (the first connection would start it anyway); completes once TLS handshakes can proceed.
    /// Null without TLS.
    /// </summary>
    internal Task? StartTls() => Tls?.StartAsync();

    /// <summary>
    /// The context for the (self-signed) server certificate. SslStreamCertificateContext always builds
    /// an X509Chain for it (to find intermediates), and on Linux every chain build loads and parses the
    /// system root store (/etc/ssl/certs) once per process, whatever the trust mode: 100–200 ms of CPU
    /// on a plugin's cold start. The TLS handshake validates the client's certificate with a chain build
    /// too, so SslStream cannot avoid the load; it can only be kept off the path to the handshake line.
    /// </summary>
    internal static SslStreamCertificateContext CreateSelfSignedContext(X509Certificate2 certificate) =>
        SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);

    /// <summary>The server's TLS context, made once, on the thread pool, when first asked for.</summary>
    private sealed class TlsContext(Task<X509Certificate2>? certificate, Func<X509Certificate2>? deferred)
    {
        private readonly TaskCompletionSource<SslStreamCertificateContext> _context = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _started;

        public Task<SslStreamCertificateContext> StartAsync()
        {
            if (Interlocked.Exchange(ref _started, 1) == 0)
            {
                (certificate ?? Task.Run(deferred!)).ContinueWith(
                    t =>
                    {
                        try
                        {
                            _context.TrySetResult(CreateSelfSignedContext(t.Result));
                        }
                        catch (Exception e)
                        {
                            // Each TLS handshake then fails with this, and the host reports the plugin broken.
                            _context.TrySetException(e is AggregateException { InnerException: { } inner } ? inner : e);
                        }
                    },
                    CancellationToken.None, TaskContinuationOptions.DenyChildAttach, TaskScheduler.Default);
            }
            return _context.Task;
        }
    }

    private static EndPoint ResolveBoundEndPoint(KestrelServer kestrel, EndPoint requested)
    {
        if (requested is not IPEndPoint { Port: 0 } ip)
        {
            return requested;
        }
        foreach (var address in kestrel.Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
        {
            if (Uri.TryCreate(address, UriKind.Absolute, out var uri) && uri.Port > 0)
            {
                return new IPEndPoint(ip.Address, uri.Port);
            }
        }
        throw new InvalidOperationException("Kestrel did not report the port it bound");
    }

    /// <summary>
    /// Cancels every call (long-lived streams end with UNAVAILABLE), then gives Kestrel
    /// <paramref name="grace"/> to finish writing before connections are aborted.
    /// </summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        using var deadline = new CancellationTokenSource(grace);
        try
        {
            await _kestrel.StopAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Grace period over; connections were aborted.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromMilliseconds(500)).ConfigureAwait(false);
        _kestrel.Dispose();
        _stopping.Dispose();
    }

    private sealed class Application(GrpcRouter router, CancellationToken stopping) : IHttpApplication<HttpContext>
    {
        public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

        public Task ProcessRequestAsync(HttpContext context) => router.HandleAsync(context, stopping);

        public void DisposeContext(HttpContext context, Exception? exception)
        {
        }
    }

    /// <summary>Kestrel asks ApplicationServices for optional services only; answer "none" without building a container.</summary>
    private sealed class EmptyServices : IServiceProvider
    {
        public static readonly EmptyServices Instance = new();

        public object? GetService(Type serviceType) => null;
    }
}
