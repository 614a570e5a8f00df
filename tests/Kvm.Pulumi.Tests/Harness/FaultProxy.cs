using System.Net;
using System.Net.Sockets;

namespace Kvm.Pulumi.Tests.Harness;

/// <summary>
/// A loopback HTTP proxy in front of a real kvm-agent that forwards everything, except that it can
/// drop the connection of the first VM read after a VM create or update: the change is made on the
/// agent, but the plugin's read-back fails, which is how a partial create or update looks to the plugin.
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _upstream = new();
    private readonly Uri _target;
    private readonly Task _loop;
    private int _dropReadAfterCreate;
    private int _createdSinceArmed;

    public FaultProxy(string target)
    {
        _target = new Uri(target);
        var port = FreePort();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public string Endpoint { get; }

    private volatile string _trigger = "POST /v1/vms";

    /// <summary>Drop the first <c>GET /v1/vms/{id}</c> that follows the next <c>POST /v1/vms</c>.</summary>
    public void DropReadAfterNextCreate() => DropReadAfterNext("POST /v1/vms");

    /// <summary>Drop the first <c>GET /v1/vms/{id}</c> that follows the next <c>PUT /v1/vms/{id}</c>.</summary>
    public void DropReadAfterNextUpdate() => DropReadAfterNext("PUT /v1/vms/");

    private void DropReadAfterNext(string trigger)
    {
        _trigger = trigger;
        Volatile.Write(ref _createdSinceArmed, 0);
        Volatile.Write(ref _dropReadAfterCreate, 1);
    }

    public int Dropped { get; private set; }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            _ = Task.Run(() => ForwardAsync(context));
        }
    }

    private async Task ForwardAsync(HttpListenerContext context)
    {
        var request = context.Request;
        var path = request.Url!.PathAndQuery;
        if (request.HttpMethod == "GET" && path.StartsWith("/v1/vms/", StringComparison.Ordinal)
            && Volatile.Read(ref _dropReadAfterCreate) == 1 && Volatile.Read(ref _createdSinceArmed) == 1)
        {
            Volatile.Write(ref _dropReadAfterCreate, 0);
            Dropped++;
            context.Response.Abort();
            return;
        }
        using var forward = new HttpRequestMessage(new HttpMethod(request.HttpMethod), new Uri(_target, path));
        if (request.HasEntityBody)
        {
            using var body = new MemoryStream();
            await request.InputStream.CopyToAsync(body);
            forward.Content = new ByteArrayContent(body.ToArray());
            if (request.ContentType is { } type)
                forward.Content.Headers.TryAddWithoutValidation("Content-Type", type);
        }
        foreach (var name in request.Headers.AllKeys.OfType<string>())
        {
            if (name is "Host" or "Content-Length" or "Content-Type" or "Connection" or "Transfer-Encoding")
                continue;
            forward.Headers.TryAddWithoutValidation(name, request.Headers.GetValues(name) ?? []);
        }
        using var answer = await _upstream.SendAsync(forward);
        var call = $"{request.HttpMethod} {request.Url!.AbsolutePath}";
        if (answer.IsSuccessStatusCode && (_trigger.EndsWith('/') ? call.StartsWith(_trigger, StringComparison.Ordinal) : call == _trigger))
            Volatile.Write(ref _createdSinceArmed, 1);
        var response = context.Response;
        response.StatusCode = (int)answer.StatusCode;
        foreach (var (name, values) in answer.Headers.Concat(answer.Content.Headers))
        {
            if (name is "Content-Length" or "Transfer-Encoding" or "Connection" or "Date" or "Server")
                continue;
            foreach (var value in values)
                response.AppendHeader(name, value);
        }
        var bytes = await answer.Content.ReadAsByteArrayAsync();
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes);
        response.Close();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
        _upstream.Dispose();
    }
}
