using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kvm.Agent.GuestAgent;

/// <summary>The guest agent answered a command with an error.</summary>
public sealed class QgaException(string command, string errorClass, string description)
    : Exception($"guest agent {command} failed: {description}")
{
    /// <summary>QGA error class (GenericError, CommandNotFound, …).</summary>
    public string ErrorClass { get; } = errorClass;
    /// <summary>The guest agent's description.</summary>
    public string Description { get; } = description;
}

/// <summary>
/// One session with a VM's QEMU guest agent over its chardev socket. The socket serves one client at a time and
/// may hold stale replies from an earlier client, and the agent inside the guest may not run at all, so a session
/// starts with <c>guest-sync-delimited</c> (a fresh random id, replies discarded until it comes back) and every
/// connect, sync and command is bounded by a timeout. Callers serialize sessions per VM (<see cref="GuestAgents"/>).
/// </summary>
public sealed class QgaClient : IAsyncDisposable
{
    /// <summary>0xFF: resets the guest agent's JSON parser and marks the start of a delimited reply.</summary>
    private const byte Sentinel = 0xFF;
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private QgaClient(Socket socket) => _socket = socket;

    /// <summary>Bound for an ordinary command.</summary>
    public static TimeSpan CommandTimeout { get; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Connects and synchronizes within <paramref name="timeout"/>; throws <see cref="TimeoutException"/> when the guest agent does not
    /// answer (not installed, not started yet, guest still booting) and <see cref="IOException"/> when the socket is not there.
    /// </summary>
    public static async Task<QgaClient> ConnectAsync(string socketPath, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var client = new QgaClient(socket);
        try
        {
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), deadline.Token);
            }
            catch (SocketException e)
            {
                throw new IOException($"cannot connect to the guest agent socket {socketPath}: {e.Message}", e);
            }
            await client.SyncAsync(deadline.Token);
            return client;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await client.DisposeAsync();
            throw new TimeoutException($"the guest agent did not answer within {timeout.TotalSeconds:0.#} s (is qemu-guest-agent running in the guest?).");
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    private async Task SyncAsync(CancellationToken cancellationToken)
    {
        var id = RandomNumberGenerator.GetInt32(1, int.MaxValue);
        var request = new JsonObject { ["execute"] = "guest-sync-delimited", ["arguments"] = new JsonObject { ["id"] = id } };
        await WriteAsync([Sentinel, .. Encoding.UTF8.GetBytes(request.ToJsonString() + "\n")], cancellationToken);
        while (true)
        {
            // Everything before the delimiter is a stale reply of an earlier session.
            while (await ReadByteAsync(cancellationToken) != Sentinel) { }
            var line = await ReadLineAsync(cancellationToken);
            if (TryParse(line) is JsonObject reply && reply["return"] is JsonValue value && value.TryGetValue<long>(out var echoed) && echoed == id)
                return;
        }
    }

    /// <summary>Runs a command and returns its <c>return</c> value; throws <see cref="QgaException"/>, <see cref="TimeoutException"/> or <see cref="IOException"/>.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var limit = timeout ?? CommandTimeout;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        try
        {
            var request = new JsonObject { ["execute"] = command };
            if (arguments is not null)
                request["arguments"] = arguments;
            await WriteAsync(Encoding.UTF8.GetBytes(request.ToJsonString() + "\n"), deadline.Token);
            while (true)
            {
                var line = await ReadLineAsync(deadline.Token);
                if (TryParse(line) is not JsonObject reply)
                    continue;
                if (reply["error"] is JsonObject error)
                    throw new QgaException(command, error["class"]?.GetValue<string>() ?? "GenericError", error["desc"]?.GetValue<string>() ?? "unknown error");
                if (reply.ContainsKey("return"))
                    return reply["return"];
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the guest agent did not answer {command} within {limit.TotalSeconds:0.#} s.");
        }
    }

    /// <summary>
    /// Sends a command that has no reply on success (<c>guest-shutdown</c>: the agent exits with the guest). An error reply that
    /// comes within <paramref name="errorWindow"/> is thrown; silence means the command was accepted.
    /// </summary>
    public async Task SendWithoutReplyAsync(string command, JsonObject? arguments, TimeSpan errorWindow, CancellationToken cancellationToken = default)
    {
        var request = new JsonObject { ["execute"] = command };
        if (arguments is not null)
            request["arguments"] = arguments;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(CommandTimeout);
        try
        {
            await WriteAsync(Encoding.UTF8.GetBytes(request.ToJsonString() + "\n"), deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the guest agent did not take {command} within {CommandTimeout.TotalSeconds:0.#} s.");
        }
        using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        window.CancelAfter(errorWindow);
        try
        {
            var line = await ReadLineAsync(window.Token);
            if (TryParse(line) is JsonObject { } reply && reply["error"] is JsonObject error)
                throw new QgaException(command, error["class"]?.GetValue<string>() ?? "GenericError", error["desc"]?.GetValue<string>() ?? "unknown error");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { }
        catch (IOException) { } // the guest went down and closed the port: accepted
    }

    private async Task WriteAsync(byte[] bytes, CancellationToken cancellationToken)
    {
        try
        {
            await _socket.SendAsync(bytes, SocketFlags.None, cancellationToken);
        }
        catch (SocketException e)
        {
            throw new IOException($"guest agent connection failed: {e.Message}", e);
        }
    }

    private async Task<byte> ReadByteAsync(CancellationToken cancellationToken)
    {
        if (_start == _end)
            await FillAsync(cancellationToken);
        return _buffer[_start++];
    }

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        while (true)
        {
            if (_start == _end)
                await FillAsync(cancellationToken);
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            var stop = newline < 0 ? _end : newline;
            line.AddRange(_buffer.AsSpan(_start, stop - _start));
            _start = newline < 0 ? _end : newline + 1;
            if (newline >= 0)
                return Encoding.UTF8.GetString([.. line.Where(b => b != Sentinel)]);
            if (line.Count > 16 * 1024 * 1024)
                throw new IOException("guest agent reply exceeds 16 MiB.");
        }
    }

    private async Task FillAsync(CancellationToken cancellationToken)
    {
        int read;
        try
        {
            read = await _socket.ReceiveAsync(_buffer, SocketFlags.None, cancellationToken);
        }
        catch (SocketException e)
        {
            throw new IOException($"guest agent connection failed: {e.Message}", e);
        }
        if (read == 0)
            throw new IOException("the guest agent socket was closed.");
        _start = 0;
        _end = read;
    }

    private static JsonNode? TryParse(string line)
    {
        if (string.IsNullOrWhiteSpace(line))
            return null;
        try { return JsonNode.Parse(line); }
        catch (JsonException) { return null; }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
