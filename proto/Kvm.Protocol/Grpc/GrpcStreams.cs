using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace Kvm.Protocol.Grpc;

/// <summary>Writes the messages of a server-streaming or duplex call.</summary>
public interface IServerStreamWriter<in T> where T : IMessage<T>
{
    /// <summary>Sends one message and flushes it. Safe to call from several tasks.</summary>
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}

internal sealed class ServerStreamWriter<T> : IServerStreamWriter<T> where T : IMessage<T>
{
    private readonly HttpContext _http;
    private readonly GrpcCallContext _call;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public ServerStreamWriter(HttpContext http, GrpcCallContext call)
    {
        _http = http;
        _call = call;
    }

    public async Task WriteAsync(T message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _call.CancellationToken);
        await _gate.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            GrpcRouter.StartResponse(_http, _call);
            GrpcWire.WriteMessage(_http.Response.BodyWriter, message);
            await _http.Response.BodyWriter.FlushAsync(linked.Token).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }
}

internal static class RequestStream
{
    public static async IAsyncEnumerable<T> ReadAllAsync<T>(
        PipeReader reader, MessageParser<T> parser, long maxMessageSize,
        [EnumeratorCancellation] CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        while (true)
        {
            var message = await GrpcWire.ReadMessageAsync(reader, parser, maxMessageSize, cancellationToken).ConfigureAwait(false);
            if (message is null)
            {
                yield break;
            }
            yield return message;
        }
    }
}
