using Microsoft.AspNetCore.Http;

namespace Kvm.Protocol.Grpc;

/// <summary>Per-call information handed to every handler.</summary>
public sealed class GrpcCallContext
{
    internal GrpcCallContext(HttpContext httpContext, string method, CancellationToken cancellationToken, DateTime? deadline)
    {
        HttpContext = httpContext;
        Method = method;
        CancellationToken = cancellationToken;
        Deadline = deadline;
    }

    /// <summary>The method path, e.g. /tfplugin6.Provider/GetProviderSchema.</summary>
    public string Method { get; }

    /// <summary>
    /// Cancelled when the client resets the stream, the grpc-timeout deadline passes, or the
    /// server is stopping. Pass it to everything the handler awaits.
    /// </summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>UTC deadline from grpc-timeout, if the client sent one.</summary>
    public DateTime? Deadline { get; }

    public IHeaderDictionary RequestHeaders => HttpContext.Request.Headers;

    /// <summary>Escape hatch (connection info, Response.OnCompleted); don't write the body.</summary>
    public HttpContext HttpContext { get; }

    /// <summary>Set once response headers or a message have gone out: errors then go in trailers.</summary>
    internal bool ResponseStarted { get; set; }
}
