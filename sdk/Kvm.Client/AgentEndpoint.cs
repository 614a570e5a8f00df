using System.Net.Sockets;

namespace Kvm.Client;

/// <summary>
/// Where an agent listens: <c>http://host:port</c>, <c>https://host:port</c>, or <c>unix:///path/agent.sock</c> for an
/// agent on this machine. A unix socket is reachable from any network namespace that sees the file, which is how tests
/// talk to an agent running inside a namespace of their own.
/// </summary>
public static class AgentEndpoint
{
    /// <summary>The accepted forms, for error messages.</summary>
    public const string Forms = "an http://, https:// or unix:///path URL";

    /// <summary>The scheme of unix-socket endpoints.</summary>
    public const string UnixScheme = "unix";

    /// <summary>True for an absolute http(s) URL with a host, or a unix URL with an absolute socket path.</summary>
    public static bool TryParse(string? text, out Uri endpoint)
    {
        endpoint = null!;
        if (string.IsNullOrWhiteSpace(text) || !Uri.TryCreate(text.Trim(), UriKind.Absolute, out var uri))
            return false;
        var ok = uri.Scheme switch
        {
            "http" or "https" => uri.Host.Length > 0,
            UnixScheme => uri.Host.Length == 0 && SocketPath(uri).Length > 1 && uri.Query.Length == 0,
            _ => false,
        };
        if (ok)
            endpoint = uri;
        return ok;
    }

    /// <summary>True when <paramref name="endpoint"/> names a unix socket.</summary>
    public static bool IsUnix(Uri endpoint) => endpoint.Scheme == UnixScheme;

    /// <summary>True for endpoints on this machine (loopback addresses and unix sockets).</summary>
    public static bool IsLocal(Uri endpoint) =>
        IsUnix(endpoint) || endpoint.IsLoopback ||
        (System.Net.IPAddress.TryParse(endpoint.Host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip));

    /// <summary>The socket file of a unix endpoint.</summary>
    public static string SocketPath(Uri endpoint) => Uri.UnescapeDataString(endpoint.AbsolutePath);

    /// <summary>The base address HTTP requests are made against (a unix socket's requests still need an http URL).</summary>
    public static Uri HttpBase(Uri endpoint)
    {
        if (IsUnix(endpoint))
            return new Uri("http://localhost/");
        return endpoint.AbsoluteUri.EndsWith('/') ? endpoint : new Uri(endpoint.AbsoluteUri + "/");
    }

    /// <summary>
    /// The handler to use for <paramref name="endpoint"/>: for a unix socket, <paramref name="handler"/> (a
    /// <see cref="SocketsHttpHandler"/>, or a new one) connecting to the socket file instead of a TCP address.
    /// </summary>
    public static HttpMessageHandler? Route(Uri endpoint, HttpMessageHandler? handler)
    {
        if (!IsUnix(endpoint))
            return handler;
        var sockets = handler switch
        {
            null => new SocketsHttpHandler(),
            SocketsHttpHandler s => s,
            _ => throw new ArgumentException("a unix-socket endpoint needs a SocketsHttpHandler.", nameof(handler)),
        };
        var path = SocketPath(endpoint);
        sockets.ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };
        return sockets;
    }
}
