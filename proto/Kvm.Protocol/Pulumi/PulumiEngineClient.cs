using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumirpc;

namespace Kvm.Protocol.Pulumi;

/// <summary>
/// Calls back into the engine. A resource plugin's stdout/stderr is hidden by the engine, so
/// anything the user should see goes through <see cref="LogAsync"/>.
/// </summary>
public sealed class PulumiEngineClient : IDisposable
{
    public const string LogMethod = "/pulumirpc.Engine/Log";

    private readonly GrpcClient _client;

    public PulumiEngineClient(string engineAddress)
        : this(GrpcClient.CreateInsecure(engineAddress))
    {
        EngineAddress = engineAddress;
    }

    public PulumiEngineClient(GrpcClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        EngineAddress = string.Empty;
    }

    public string EngineAddress { get; }

    /// <param name="urn">Shows the message under that resource; empty for a global message.</param>
    /// <param name="ephemeral">A status line that the next message replaces.</param>
    public Task LogAsync(LogSeverity severity, string message, string? urn = null, bool ephemeral = false,
        int streamId = 0, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(LogMethod, new LogRequest
        {
            Severity = severity,
            Message = message ?? string.Empty,
            Urn = urn ?? string.Empty,
            Ephemeral = ephemeral,
            StreamId = streamId,
        }, Empty.Parser, cancellationToken);

    public void Dispose() => _client.Dispose();
}
