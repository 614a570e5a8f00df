using System.Text.Json.Nodes;
using Kvm.Client;
using Kvm.Protocol.Grpc;

namespace Kvm.Pulumi.Provider;

/// <summary>
/// Everything the plugin needs from the agents once configured: each resource type's lifecycle
/// (shared with the Terraform plugin) and the host facts behind <c>getHost</c>. Hosts are the
/// names of the provider's <c>hosts</c> map; the empty string is the default <c>endpoint</c>.
/// </summary>
public interface IKvmBackend
{
    /// <summary>The lifecycle of the resource whose model type is <paramref name="modelType"/> (e.g. <c>Vm</c>).</summary>
    IResourceOperations Resource(Type modelType);

    /// <summary><c>GET /v1/host</c> on <paramref name="host"/>, as model JSON.</summary>
    Task<JsonObject> ReadHostAsync(string host, CancellationToken cancellationToken);
}

/// <summary>The one place the plugin meets the agent client.</summary>
public static class AgentBackend
{
    /// <summary>
    /// The backend for a configured provider. Until the agent client lands (Kvm.Client's
    /// implementation of <see cref="IResourceOperations"/>), every agent call fails cleanly with
    /// UNAVAILABLE: nothing happened, and Check, Diff and previews work without an agent.
    /// </summary>
    public static IKvmBackend Create(ProviderSettings settings) => new UnavailableBackend(settings);

    private sealed class UnavailableBackend(ProviderSettings settings) : IKvmBackend
    {
        public IResourceOperations Resource(Type modelType) => throw Unavailable();

        public Task<JsonObject> ReadHostAsync(string host, CancellationToken cancellationToken) => throw Unavailable();

        private GrpcException Unavailable() => new(StatusCode.Unavailable,
            $"this build of pulumi-resource-kvm has no kvm-agent client, so it cannot reach {settings.Endpoint ?? "the agent"}.");
    }
}
