using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Kvm.Protocol.Grpc;

public sealed class GrpcServerOptions
{
    /// <summary>An <see cref="IPEndPoint"/> (port 0 picks one) or a <see cref="UnixDomainSocketEndPoint"/>.</summary>
    public required EndPoint EndPoint { get; init; }

    /// <summary>When set, the server speaks TLS (ALPN h2); otherwise HTTP/2 with prior knowledge (h2c).</summary>
    public X509Certificate2? ServerCertificate { get; init; }

    /// <summary>When set (TLS only), a client certificate is required and must satisfy this check.</summary>
    public Func<X509Certificate2, bool>? ClientCertificateValidator { get; init; }
}

/// <summary>
/// Kestrel serving one <see cref="GrpcRouter"/> and nothing else: no configuration sources, no
/// logging providers (stdout belongs to the plugin handshake), no signal handling (the plugin
/// hosts decide what SIGINT/SIGTERM mean).
/// </summary>
public sealed class GrpcServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping;
    private int _stopped;

    private GrpcServer(WebApplication app, CancellationTokenSource stopping, EndPoint boundEndPoint)
    {
        _app = app;
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
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        if (options.ServerCertificate is not null)
        {
            builder.WebHost.UseKestrelHttpsConfiguration();
        }
        builder.Services.AddSingleton<IHostLifetime, NoSignalLifetime>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            var limits = kestrel.Limits;
            limits.MaxRequestBodySize = null;
            // Streams such as StreamStdio idle for the whole process life; data-rate and
            // keep-alive limits would cut them (and the connection) off.
            limits.MinRequestBodyDataRate = null;
            limits.MinResponseDataRate = null;
            limits.KeepAliveTimeout = Timeout.InfiniteTimeSpan;
            limits.Http2.MaxStreamsPerConnection = 1000;
            // Larger windows let a 20+ MiB schema or state move without a round trip per 64 KiB.
            limits.Http2.InitialConnectionWindowSize = 8 * 1024 * 1024;
            limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
            kestrel.Listen(options.EndPoint, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                if (options.ServerCertificate is { } certificate)
                {
                    listen.UseHttps(HttpsOptions(certificate, options.ClientCertificateValidator));
                }
            });
        });

        var app = builder.Build();
        var stopping = new CancellationTokenSource();
        var token = stopping.Token;
        ((IApplicationBuilder)app).Run(http => router.HandleAsync(http, token));
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            stopping.Dispose();
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return new GrpcServer(app, stopping, ResolveBoundEndPoint(app, options.EndPoint));
    }

    private static HttpsConnectionAdapterOptions HttpsOptions(X509Certificate2 certificate, Func<X509Certificate2, bool>? validator)
    {
        var https = new HttpsConnectionAdapterOptions
        {
            ServerCertificate = certificate,
            SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CheckCertificateRevocation = false,
            ClientCertificateMode = validator is null ? ClientCertificateMode.NoCertificate : ClientCertificateMode.RequireCertificate,
        };
        if (validator is not null)
        {
            // The peer's cert is self-signed, so chain errors are expected: pinning replaces them.
            https.ClientCertificateValidation = (cert, _, _) => validator(cert);
        }
        return https;
    }

    private static EndPoint ResolveBoundEndPoint(WebApplication app, EndPoint requested)
    {
        if (requested is not IPEndPoint { Port: 0 } ip)
        {
            return requested;
        }
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        foreach (var address in addresses ?? [])
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
            await _app.StopAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Grace period over; connections were aborted.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromMilliseconds(500)).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private sealed class NoSignalLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
