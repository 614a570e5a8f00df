using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace Kvm.Protocol.Grpc;

/// <summary>
/// A minimal gRPC client over <see cref="HttpClient"/>: unary and server-streaming calls,
/// status from trailers or Trailers-Only headers, details from grpc-status-details-bin.
/// Used by the Pulumi plugin to call the engine, and by tests.
/// </summary>
public sealed class GrpcClient : IDisposable
{
    private readonly HttpMessageInvoker _invoker;
    private readonly Uri _baseAddress;
    private readonly bool _disposeInvoker;

    public GrpcClient(HttpMessageInvoker invoker, Uri baseAddress, bool disposeInvoker = true)
    {
        ArgumentNullException.ThrowIfNull(invoker);
        ArgumentNullException.ThrowIfNull(baseAddress);
        _invoker = invoker;
        _baseAddress = baseAddress;
        _disposeInvoker = disposeInvoker;
    }

    /// <summary>Plaintext HTTP/2 with prior knowledge to "host:port", as Pulumi's engine listens.</summary>
    public static GrpcClient CreateInsecure(string hostAndPort)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostAndPort);
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        return new GrpcClient(new HttpMessageInvoker(handler), new Uri("http://" + hostAndPort));
    }

    public long MaxReceiveMessageSize { get; set; } = GrpcWire.DefaultMaxReceiveMessageSize;

    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser, CancellationToken cancellationToken = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(parser);
        using var response = await SendAsync(method, request, cancellationToken).ConfigureAwait(false);
        var reader = PipeReader.Create(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        try
        {
            var message = await GrpcWire.ReadMessageAsync(reader, parser, MaxReceiveMessageSize, cancellationToken).ConfigureAwait(false);
            if (message is not null
                && await GrpcWire.ReadMessageAsync(reader, parser, MaxReceiveMessageSize, cancellationToken).ConfigureAwait(false) is not null)
            {
                throw new GrpcException(StatusCode.Internal, "unary response has more than one message");
            }
            ThrowIfError(response.TrailingHeaders);
            return message ?? throw new GrpcException(StatusCode.Internal, "response has no message and status OK");
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    public async IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(parser);
        using var response = await SendAsync(method, request, cancellationToken).ConfigureAwait(false);
        var reader = PipeReader.Create(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        try
        {
            while (await GrpcWire.ReadMessageAsync(reader, parser, MaxReceiveMessageSize, cancellationToken).ConfigureAwait(false) is { } message)
            {
                yield return message;
            }
            ThrowIfError(response.TrailingHeaders);
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    private async Task<HttpResponseMessage> SendAsync<TRequest>(string method, TRequest request, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        ArgumentNullException.ThrowIfNull(request);
        using var message = CreateRequest(new Uri(_baseAddress, method), new ByteArrayContent(GrpcWire.Frame(request)));
        HttpResponseMessage response;
        try
        {
            response = await _invoker.SendAsync(message, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new GrpcException(StatusCode.Unavailable, e.Message, e);
        }
        try
        {
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new GrpcException(FromHttpStatus(response.StatusCode), $"HTTP status {(int)response.StatusCode}");
            }
            // Trailers-Only: the status arrived with the headers and there is no body.
            ThrowIfError(response.Headers);
            return response;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>A gRPC POST with the headers every gRPC server expects; tests reuse it with raw bodies.</summary>
    public static HttpRequestMessage CreateRequest(Uri uri, HttpContent content)
    {
        ArgumentNullException.ThrowIfNull(content);
        content.Headers.ContentType = new MediaTypeHeaderValue(GrpcWire.ContentType);
        var message = new HttpRequestMessage(HttpMethod.Post, uri)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        message.Headers.TE.ParseAdd("trailers");
        return message;
    }

    /// <summary>Reads grpc-status/-message/-status-details-bin; throws unless the status is OK or absent.</summary>
    public static void ThrowIfError(HttpHeaders headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        if (!headers.TryGetValues(GrpcWire.StatusHeader, out var statusValues))
        {
            return;
        }
        var text = statusValues.FirstOrDefault();
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code))
        {
            throw new GrpcException(StatusCode.Unknown, $"invalid grpc-status '{text}'");
        }
        if (code == 0)
        {
            return;
        }
        var message = headers.TryGetValues(GrpcWire.MessageHeader, out var messages)
            ? GrpcWire.DecodeMessage(messages.FirstOrDefault())
            : string.Empty;
        Rpc.Status? details = null;
        if (headers.TryGetValues(GrpcWire.StatusDetailsHeader, out var detailValues) && detailValues.FirstOrDefault() is { } encoded)
        {
            try
            {
                details = Rpc.Status.Parser.ParseFrom(GrpcWire.FromBase64(encoded));
            }
            catch (Exception e) when (e is FormatException or InvalidProtocolBufferException)
            {
                // A broken details header must not hide the status itself.
            }
        }
        throw new GrpcException((StatusCode)code, message, details);
    }

    private static StatusCode FromHttpStatus(HttpStatusCode status) => status switch
    {
        HttpStatusCode.BadRequest => StatusCode.Internal,
        HttpStatusCode.Unauthorized => StatusCode.Unauthenticated,
        HttpStatusCode.Forbidden => StatusCode.PermissionDenied,
        HttpStatusCode.NotFound => StatusCode.Unimplemented,
        HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway
            or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };

    public void Dispose()
    {
        if (_disposeInvoker)
        {
            _invoker.Dispose();
        }
    }
}
