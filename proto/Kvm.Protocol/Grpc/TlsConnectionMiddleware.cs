using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;

namespace Kvm.Protocol.Grpc;

/// <summary>
/// TLS for a bare KestrelServer: Kestrel's own UseHttps needs services that only the full web
/// host registers, and that host costs ~60 ms of start-up on every plugin launch. HTTP/2 then
/// runs over the decrypted pipe exactly as it would over a plaintext socket.
/// </summary>
internal sealed class TlsConnectionMiddleware
{
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    private readonly ConnectionDelegate _next;
    private readonly Func<Task<SslStreamCertificateContext>> _context;
    private readonly Func<X509Certificate2, bool>? _clientValidator;

    public TlsConnectionMiddleware(ConnectionDelegate next, Func<Task<SslStreamCertificateContext>> context, Func<X509Certificate2, bool>? clientValidator)
    {
        _next = next;
        _context = context;
        _clientValidator = clientValidator;
    }

    public async Task OnConnectionAsync(ConnectionContext connection)
    {
        var original = connection.Transport;
        var ssl = new SslStream(new DuplexPipeStream(original), leaveInnerStreamOpen: false);
        try
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed))
            {
                timeout.CancelAfter(HandshakeTimeout);
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = await _context().WaitAsync(timeout.Token).ConfigureAwait(false),
                    ApplicationProtocols = [SslApplicationProtocol.Http2],
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    ClientCertificateRequired = _clientValidator is not null,
                    // The pin below is the whole trust decision: keep chain building away from the
                    // system store and the network.
                    CertificateChainPolicy = new X509ChainPolicy
                    {
                        TrustMode = X509ChainTrustMode.CustomRootTrust,
                        DisableCertificateDownloads = true,
                        RevocationMode = X509RevocationMode.NoCheck,
                    },
                    // The peer's certificate is self-signed: chain errors are expected and the pin decides.
                    RemoteCertificateValidationCallback = _clientValidator is null
                        ? null
                        : (_, certificate, _, _) => certificate is X509Certificate2 c && _clientValidator(c),
                }, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException)
        {
            // Refused (wrong client certificate, not TLS) or gone: drop the connection.
            await ssl.DisposeAsync().ConfigureAwait(false);
            return;
        }

        var reader = PipeReader.Create(ssl, new StreamPipeReaderOptions(leaveOpen: true));
        var writer = PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true));
        connection.Transport = new DuplexPipe(reader, writer);
        try
        {
            await _next(connection).ConfigureAwait(false);
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
            await ssl.DisposeAsync().ConfigureAwait(false);
            connection.Transport = original;
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>A Stream over the socket's pipes, for SslStream to sit on.</summary>
    private sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                var result = await pipe.Input.ReadAsync(cancellationToken).ConfigureAwait(false);
                var readable = result.Buffer;
                if (!readable.IsEmpty)
                {
                    var count = (int)Math.Min(readable.Length, buffer.Length);
                    var slice = readable.Slice(0, count);
                    slice.CopyTo(buffer.Span);
                    pipe.Input.AdvanceTo(slice.End);
                    return count;
                }
                pipe.Input.AdvanceTo(readable.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return 0;
                }
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await pipe.Output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task FlushAsync(CancellationToken cancellationToken) =>
            pipe.Output.FlushAsync(cancellationToken).AsTask();

        public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

        public override int Read(byte[] buffer, int offset, int count) =>
            ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Write(byte[] buffer, int offset, int count) =>
            WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
