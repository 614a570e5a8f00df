using System.Text.Json.Nodes;
using Kvm.Client;
using Kvm.Client.Operations;
using Kvm.Model;
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

    /// <summary><c>GET /v1/vms/{vm_id}/addresses</c> on <paramref name="host"/>, as model JSON (<c>getVmAddresses</c>).</summary>
    Task<JsonObject> ReadVmAddressesAsync(string host, long vmId, CancellationToken cancellationToken);
}

/// <summary>The one place the plugin meets the agent client: the lifecycles shared with the Terraform plugin.</summary>
public static class AgentBackend
{
    /// <summary>The backend for a configured provider.</summary>
    public static IKvmBackend Create(ProviderSettings settings) => new Backend(settings);

    private sealed class Backend : IKvmBackend
    {
        private readonly AgentClients _clients;
        private readonly Dictionary<Type, IResourceOperations> _resources;
        private readonly HostLookup _host;
        private readonly VmAddressesLookup _addresses;

        public Backend(ProviderSettings settings)
        {
            _clients = new AgentClients(host => EndpointFor(settings, host), settings.Token);
            _resources = new()
            {
                [typeof(Vm)] = new VmOperations(_clients),
                [typeof(Volume)] = new VolumeOperations(_clients),
                [typeof(Image)] = new ImageOperations(_clients),
                [typeof(StoragePool)] = new StoragePoolOperations(_clients),
                [typeof(Network)] = new NetworkOperations(_clients),
                [typeof(Snapshot)] = new SnapshotOperations(_clients),
            };
            _host = new HostLookup(_clients);
            _addresses = new VmAddressesLookup(_clients);
        }

        public IResourceOperations Resource(Type modelType) => _resources[modelType];

        public Task<JsonObject> ReadHostAsync(string host, CancellationToken cancellationToken) =>
            _host.ReadAsync(host, [], cancellationToken);

        public Task<JsonObject> ReadVmAddressesAsync(string host, long vmId, CancellationToken cancellationToken) =>
            _addresses.ReadAsync(host, new JsonObject { ["vm_id"] = vmId }, cancellationToken);

        // "" is the provider's own endpoint; other hosts are keys of its hosts map (Check refuses unknown ones).
        private static Uri EndpointFor(ProviderSettings settings, string host)
        {
            var endpoint = host.Length == 0 ? settings.Endpoint : settings.Hosts.GetValueOrDefault(host);
            return endpoint is not null ? new Uri(endpoint)
                : throw new GrpcException(StatusCode.FailedPrecondition, host.Length == 0
                    ? "kvm:endpoint is not set (nor KVM_ENDPOINT)."
                    : $"host \"{host}\" is not in kvm:hosts.");
        }
    }
}
