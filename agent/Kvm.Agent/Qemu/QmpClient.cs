using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kvm.Agent.Qemu;

/// <summary>An asynchronous QMP event (STOP, RESUME, SHUTDOWN, …).</summary>
public sealed record QmpEvent(string Name, JsonObject? Data);

/// <summary>QEMU answered a command with an error.</summary>
public sealed class QmpException(string command, string errorClass, string description)
    : Exception($"QMP {command} failed: {description}")
{
    /// <summary>QMP error class (GenericError, DeviceNotFound, …).</summary>
    public string ErrorClass { get; } = errorClass;
    /// <summary>QEMU's description.</summary>
    public string Description { get; } = description;
}

/// <summary>
/// One QMP connection. A QMP socket serves a single client and a second client gets no greeting until the
/// first leaves, so each VM's connection has exactly one owner (<c>VmMonitor</c>), and every connect,
/// greeting and command is bounded by a timeout.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<long, TaskCompletionSource<JsonNode?>> _pending = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<QmpEvent> _onEvent;
    private readonly CancellationTokenSource _stop = new();
    private long _nextId;
    private int _disposed;

    private QmpClient(Socket socket, Action<QmpEvent> onEvent)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _onEvent = onEvent;
    }

    /// <summary>Completes when QEMU closes the connection (it exited or was killed) or the client is disposed.</summary>
    public Task Closed => _closed.Task;

    /// <summary>Default bound for a command.</summary>
    public static TimeSpan CommandTimeout { get; } = TimeSpan.FromSeconds(5);

    /// <summary>Connects, reads the greeting and negotiates capabilities, all within <paramref name="timeout"/>.</summary>
    public static async Task<QmpClient> ConnectAsync(string socketPath, TimeSpan timeout, Action<QmpEvent> onEvent, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        QmpClient? client = null;
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), deadline.Token);
            client = new QmpClient(socket, onEvent);
            var greeting = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
            client._pending[-1] = greeting;
            _ = client.ReadLoopAsync();
            await greeting.Task.WaitAsync(deadline.Token);
            await client.ExecuteAsync("qmp_capabilities", null, timeout, deadline.Token);
            return client;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await DisposeQuietly(client, socket);
            throw new TimeoutException($"QMP at {socketPath} did not answer within {timeout.TotalSeconds:0.#} s.");
        }
        catch
        {
            await DisposeQuietly(client, socket);
            throw;
        }
    }

    /// <summary>Runs a command and returns its <c>return</c> value; throws <see cref="QmpException"/>, <see cref="TimeoutException"/> or <see cref="IOException"/> (connection gone).</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var id = Interlocked.Increment(ref _nextId);
        var reply = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        try
        {
            if (_closed.Task.IsCompleted)
                throw new IOException("QMP connection closed.");
            var message = new JsonObject { ["execute"] = command, ["id"] = id };
            if (arguments is not null)
                message["arguments"] = arguments;
            var bytes = Encoding.UTF8.GetBytes(message.ToJsonString() + "\n");
            await _writeLock.WaitAsync(cancellationToken);
            try
            {
                await _stream.WriteAsync(bytes, cancellationToken);
            }
            finally
            {
                _writeLock.Release();
            }
            var limit = timeout ?? CommandTimeout;
            try
            {
                var node = await reply.Task.WaitAsync(limit, cancellationToken);
                if (node?["error"] is JsonObject error)
                    throw new QmpException(command, error["class"]?.GetValue<string>() ?? "GenericError", error["desc"]?.GetValue<string>() ?? "unknown error");
                return node?["return"];
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"QMP {command} got no answer within {limit.TotalSeconds:0.#} s.");
            }
        }
        catch (SocketException e)
        {
            throw new IOException($"QMP connection failed: {e.Message}", e);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            using var reader = new StreamReader(_stream, Encoding.UTF8, false, 64 * 1024, leaveOpen: true);
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (line.Length == 0)
                    continue;
                JsonNode? node;
                try { node = JsonNode.Parse(line); }
                catch (JsonException) { continue; }
                if (node is not JsonObject message)
                    continue;
                if (message.ContainsKey("QMP"))
                    Complete(-1, message);
                else if (message["event"] is JsonValue name)
                    Dispatch(new QmpEvent(name.GetValue<string>(), message["data"] as JsonObject));
                else if (message["id"] is JsonValue id && id.TryGetValue<long>(out var n))
                    Complete(n, message);
            }
        }
        catch (IOException) { }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        catch (OperationCanceledException) { }
        finally
        {
            _closed.TrySetResult();
            foreach (var waiter in _pending.Values)
                waiter.TrySetException(new IOException("QMP connection closed."));
        }
    }

    private void Complete(long id, JsonObject message)
    {
        if (_pending.TryGetValue(id, out var waiter))
            waiter.TrySetResult(message);
    }

    private void Dispatch(QmpEvent e)
    {
        try { _onEvent(e); }
        catch (Exception) { /* an observer's failure must not end the connection */ }
    }

    /// <summary>Shuts the socket down (so QEMU sees the client leave at once) and releases it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _stop.CancelAsync();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _socket.Dispose();
        await _stream.DisposeAsync();
        _closed.TrySetResult();
    }

    private static async Task DisposeQuietly(QmpClient? client, Socket socket)
    {
        if (client is not null)
            await client.DisposeAsync();
        else
            socket.Dispose();
    }
}
