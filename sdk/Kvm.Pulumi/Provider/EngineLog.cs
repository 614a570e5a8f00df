using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumirpc;

namespace Kvm.Pulumi.Provider;

/// <summary>
/// Messages for the user, through the engine's Log service: a resource plugin's own stdout and
/// stderr are hidden by the engine. Best effort: a message that cannot be delivered is dropped.
/// </summary>
public sealed class EngineLog : IDisposable
{
    private readonly Lock _lock = new();
    private GrpcClient? _client;

    /// <summary>The engine's address (127.0.0.1:port), once known from the command line, Handshake or Attach.</summary>
    public string? Address { get; private set; }

    public void Connect(string? address)
    {
        if (string.IsNullOrWhiteSpace(address))
            return;
        lock (_lock)
        {
            if (address == Address)
                return;
            _client?.Dispose();
            _client = GrpcClient.CreateInsecure(address);
            Address = address;
        }
    }

    public Task InfoAsync(string message, string urn = "") => WriteAsync(LogSeverity.Info, message, urn);

    public Task WarningAsync(string message, string urn = "") => WriteAsync(LogSeverity.Warning, message, urn);

    public async Task WriteAsync(LogSeverity severity, string message, string urn)
    {
        GrpcClient? client;
        lock (_lock)
            client = _client;
        if (client is null)
            return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await client.UnaryAsync("/pulumirpc.Engine/Log", new LogRequest { Severity = severity, Message = message, Urn = urn ?? "" },
                Empty.Parser, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is GrpcException or OperationCanceledException or HttpRequestException or IOException)
        {
            // The engine may be gone already (shutdown); the message has nowhere to go.
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _client?.Dispose();
            _client = null;
        }
    }
}
