using System.Collections.Frozen;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kvm.Protocol.Grpc;

/// <summary>
/// Maps gRPC method paths (/package.Service/Method) to typed handlers and runs them over an
/// ASP.NET Core HTTP/2 request: framing, status trailers, Trailers-Only errors, deadlines.
/// Register everything before the server starts; lookups are lock-free afterwards.
/// </summary>
public sealed partial class GrpcRouter
{
    private readonly Dictionary<string, Route> _routes = new(StringComparer.Ordinal);
    private FrozenDictionary<string, Route>? _frozen;
    private readonly ILogger _logger;

    public GrpcRouter(ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Largest request message accepted; larger ones get RESOURCE_EXHAUSTED.</summary>
    public long MaxReceiveMessageSize { get; set; } = GrpcWire.DefaultMaxReceiveMessageSize;

    public IReadOnlyCollection<string> Methods => _routes.Keys;

    private enum Kind
    {
        Unary,
        ServerStreaming,
        DuplexStreaming,
    }

    private sealed record Route(Kind Kind, Type RequestType, Type ResponseType, Func<HttpContext, GrpcCallContext, Task> Invoke);

    public GrpcRouter Unary<TRequest, TResponse>(
        string method, MessageParser<TRequest> parser, Func<TRequest, GrpcCallContext, Task<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentNullException.ThrowIfNull(handler);
        return Add(method, new Route(Kind.Unary, typeof(TRequest), typeof(TResponse), async (http, call) =>
        {
            var request = await ReadSingleAsync(http, parser, call).ConfigureAwait(false);
            var response = await handler(request, call).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"handler for {method} returned null");
            StartResponse(http, call);
            GrpcWire.WriteMessage(http.Response.BodyWriter, response);
            WriteOkTrailers(http);
        }));
    }

    public GrpcRouter ServerStreaming<TRequest, TResponse>(
        string method, MessageParser<TRequest> parser,
        Func<TRequest, IServerStreamWriter<TResponse>, GrpcCallContext, Task> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentNullException.ThrowIfNull(handler);
        return Add(method, new Route(Kind.ServerStreaming, typeof(TRequest), typeof(TResponse), async (http, call) =>
        {
            var request = await ReadSingleAsync(http, parser, call).ConfigureAwait(false);
            await handler(request, new ServerStreamWriter<TResponse>(http, call), call).ConfigureAwait(false);
            FinishStream(http, call);
        }));
    }

    /// <summary>
    /// Bidirectional streaming. Response headers go out at once, so the client sees the call
    /// as open even if the handler never writes (go-plugin's broker stream).
    /// </summary>
    public GrpcRouter DuplexStreaming<TRequest, TResponse>(
        string method, MessageParser<TRequest> parser,
        Func<IAsyncEnumerable<TRequest>, IServerStreamWriter<TResponse>, GrpcCallContext, Task> handler)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(parser);
        ArgumentNullException.ThrowIfNull(handler);
        return Add(method, new Route(Kind.DuplexStreaming, typeof(TRequest), typeof(TResponse), async (http, call) =>
        {
            StartResponse(http, call);
            await http.Response.BodyWriter.FlushAsync(call.CancellationToken).ConfigureAwait(false);
            var requests = RequestStream.ReadAllAsync(http.Request.BodyReader, parser, MaxReceiveMessageSize, call.CancellationToken);
            await handler(requests, new ServerStreamWriter<TResponse>(http, call), call).ConfigureAwait(false);
            FinishStream(http, call);
        }));
    }

    private GrpcRouter Add(string method, Route route)
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        if (method[0] != '/' || method.IndexOf('/', 1) <= 1 || method.EndsWith('/'))
        {
            throw new ArgumentException($"'{method}' is not a gRPC method path (/package.Service/Method)", nameof(method));
        }
        if (_frozen is not null)
        {
            throw new InvalidOperationException("routes cannot be added after the server has started");
        }
        if (!_routes.TryAdd(method, route))
        {
            throw new ArgumentException($"{method} is already registered", nameof(method));
        }
        return this;
    }

    /// <summary>
    /// Compares the registrations with a service declared in our .proto files: wrong message
    /// types or streaming kinds always count; unregistered methods count when
    /// <paramref name="requireAll"/> is set. Meant for tests, so start-up pays nothing.
    /// </summary>
    public IReadOnlyList<string> Validate(ServiceDescriptor service, bool requireAll = false)
    {
        ArgumentNullException.ThrowIfNull(service);
        var problems = new List<string>();
        foreach (var m in service.Methods)
        {
            var path = $"/{service.FullName}/{m.Name}";
            if (!_routes.TryGetValue(path, out var route))
            {
                if (requireAll)
                {
                    problems.Add($"{path} is not registered");
                }
                continue;
            }
            var expectedKind = (m.IsClientStreaming, m.IsServerStreaming) switch
            {
                (false, false) => Kind.Unary,
                (false, true) => Kind.ServerStreaming,
                _ => Kind.DuplexStreaming,
            };
            if (route.Kind != expectedKind)
            {
                problems.Add($"{path} is registered as {route.Kind}, the service declares {expectedKind}");
            }
            if (route.RequestType != m.InputType.ClrType)
            {
                problems.Add($"{path} takes {m.InputType.ClrType?.FullName}, registered with {route.RequestType.FullName}");
            }
            if (route.ResponseType != m.OutputType.ClrType)
            {
                problems.Add($"{path} returns {m.OutputType.ClrType?.FullName}, registered with {route.ResponseType.FullName}");
            }
        }
        return problems;
    }

    /// <summary>The terminal request delegate. <paramref name="serverStopping"/> cancels every call.</summary>
    public async Task HandleAsync(HttpContext http, CancellationToken serverStopping)
    {
        ArgumentNullException.ThrowIfNull(http);
        var routes = _frozen ??= _routes.ToFrozenDictionary(StringComparer.Ordinal);
        var request = http.Request;
        if (!HttpMethods.IsPost(request.Method) || !GrpcWire.IsGrpcContentType(request.ContentType))
        {
            http.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            http.Response.Headers[GrpcWire.StatusHeader] = ((int)StatusCode.Internal).ToString(System.Globalization.CultureInfo.InvariantCulture);
            http.Response.Headers[GrpcWire.MessageHeader] = "expected a gRPC request (POST, content-type application/grpc)";
            return;
        }
        var path = request.Path.Value ?? string.Empty;
        var encoding = request.Headers[GrpcWire.EncodingHeader].ToString();
        if (encoding.Length > 0 && !string.Equals(encoding, "identity", StringComparison.OrdinalIgnoreCase))
        {
            WriteTrailersOnly(http, StatusCode.Unimplemented, $"grpc-encoding '{encoding}' is not supported", null);
            return;
        }
        if (!routes.TryGetValue(path, out var route))
        {
            WriteTrailersOnly(http, StatusCode.Unimplemented, $"unknown method {path}", null);
            return;
        }

        var timeout = GrpcWire.ParseTimeout(request.Headers[GrpcWire.TimeoutHeader].ToString());
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, serverStopping);
        DateTime? deadline = null;
        if (timeout is { } t)
        {
            deadline = DateTime.UtcNow + t;
            cts.CancelAfter(t);
        }
        var call = new GrpcCallContext(http, path, cts.Token, deadline);
        try
        {
            await route.Invoke(http, call).ConfigureAwait(false);
        }
        catch (Exception) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client reset the stream; nobody is left to read a status.
        }
        catch (GrpcException e)
        {
            WriteError(http, call, e.StatusCode, e.Message, e.Details);
        }
        catch (OperationCanceledException) when (serverStopping.IsCancellationRequested)
        {
            WriteError(http, call, StatusCode.Unavailable, "server is shutting down", null);
        }
        catch (OperationCanceledException) when (deadline is not null && cts.IsCancellationRequested)
        {
            WriteError(http, call, StatusCode.DeadlineExceeded, "deadline exceeded", null);
        }
        catch (Exception e)
        {
            LogHandlerFailed(_logger, path, e);
            WriteError(http, call, StatusCode.Unknown, $"{e.GetType().Name}: {e.Message}", null);
        }
    }

    private async Task<T> ReadSingleAsync<T>(HttpContext http, MessageParser<T> parser, GrpcCallContext call)
        where T : class, IMessage<T>
    {
        var reader = http.Request.BodyReader;
        var message = await GrpcWire.ReadMessageAsync(reader, parser, MaxReceiveMessageSize, call.CancellationToken).ConfigureAwait(false)
            ?? throw new GrpcException(StatusCode.Internal, "request has no message");
        // A unary request is exactly one message; anything after it is a broken client.
        while (true)
        {
            var result = await reader.ReadAsync(call.CancellationToken).ConfigureAwait(false);
            var extra = result.Buffer.Length;
            reader.AdvanceTo(result.Buffer.End);
            if (extra > 0)
            {
                throw new GrpcException(StatusCode.Internal, "request has more than one message");
            }
            if (result.IsCompleted || result.IsCanceled)
            {
                return message;
            }
        }
    }

    internal static void StartResponse(HttpContext http, GrpcCallContext call)
    {
        if (call.ResponseStarted)
        {
            return;
        }
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = GrpcWire.ContentType;
        call.ResponseStarted = true;
    }

    private static void FinishStream(HttpContext http, GrpcCallContext call)
    {
        if (call.ResponseStarted)
        {
            WriteOkTrailers(http);
        }
        else
        {
            WriteTrailersOnly(http, StatusCode.OK, null, null);
        }
    }

    private static void WriteOkTrailers(HttpContext http) =>
        http.Response.AppendTrailer(GrpcWire.StatusHeader, "0");

    private static void WriteError(HttpContext http, GrpcCallContext call, StatusCode code, string? message, Rpc.Status? details)
    {
        if (call.ResponseStarted)
        {
            if (http.Response.SupportsTrailers())
            {
                foreach (var (name, value) in StatusFields(code, message, details))
                {
                    http.Response.AppendTrailer(name, value);
                }
            }
            return;
        }
        WriteTrailersOnly(http, code, message, details);
    }

    /// <summary>
    /// One HEADERS frame with END_STREAM: Kestrel sends exactly that when the app writes
    /// headers, no body and no trailers.
    /// </summary>
    private static void WriteTrailersOnly(HttpContext http, StatusCode code, string? message, Rpc.Status? details)
    {
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = GrpcWire.ContentType;
        foreach (var (name, value) in StatusFields(code, message, details))
        {
            http.Response.Headers[name] = value;
        }
    }

    private static IEnumerable<(string Name, string Value)> StatusFields(StatusCode code, string? message, Rpc.Status? details)
    {
        yield return (GrpcWire.StatusHeader, ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(message))
        {
            yield return (GrpcWire.MessageHeader, GrpcWire.EncodeMessage(message));
        }
        if (details is not null)
        {
            // The spec wants the detail's code to agree with grpc-status; fix it rather than send a contradiction.
            var status = details.Clone();
            status.Code = (int)code;
            if (string.IsNullOrEmpty(status.Message) && message is not null)
            {
                status.Message = message;
            }
            yield return (GrpcWire.StatusDetailsHeader, GrpcWire.ToUnpaddedBase64(status.ToByteArray()));
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "gRPC handler for {Method} failed")]
    private static partial void LogHandlerFailed(ILogger logger, string method, Exception exception);
}
