using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumi;
using Kvm.Protocol.Pulumirpc;

namespace Kvm.Pulumi.Provider;

/// <summary>
/// Messages for the user, through the engine's Log service: a resource plugin's own stdout and
/// stderr are hidden by the engine. Best effort: a message that cannot be delivered is dropped.
/// </summary>
public sealed class EngineLog : IDisposable
{
    private readonly Func<PulumiEngineClient?> _engine;
    private readonly Action<string> _attach;
    private readonly PulumiEngineClient? _owned;

    /// <param name="engine">The client for the engine address known so far (command line, Handshake, Attach).</param>
    /// <param name="attach">Records an engine address learned from Handshake or Attach.</param>
    public EngineLog(Func<PulumiEngineClient?> engine, Action<string> attach)
    {
        _engine = engine;
        _attach = attach;
    }

    private EngineLog(PulumiEngineClient owned)
        : this(() => owned, _ => { }) => _owned = owned;

    /// <summary>A log bound to one engine address.</summary>
    public static EngineLog To(string engineAddress) => new(new PulumiEngineClient(engineAddress));

    public void Connect(string? address)
    {
        if (!string.IsNullOrWhiteSpace(address))
            _attach(address);
    }

    public Task InfoAsync(string message, string urn = "") => WriteAsync(LogSeverity.Info, message, urn);

    public Task WarningAsync(string message, string urn = "") => WriteAsync(LogSeverity.Warning, message, urn);

    public async Task WriteAsync(LogSeverity severity, string message, string urn)
    {
        if (_engine() is not { } engine)
            return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await engine.LogAsync(severity, message, urn, cancellationToken: timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is GrpcException or OperationCanceledException or HttpRequestException or IOException or ObjectDisposedException)
        {
            // The engine may be gone already (shutdown); the message has nowhere to go.
        }
    }

    public void Dispose() => _owned?.Dispose();
}
