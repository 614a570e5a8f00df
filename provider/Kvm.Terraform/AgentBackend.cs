using Kvm.Client;
using Kvm.Client.Operations;

namespace Kvm.Terraform;

/// <summary>The production backend: the shared operations over the agents named by the provider block.</summary>
public sealed class AgentBackend : IProviderBackend, IAgentClients, IDisposable
{
    // Built on first use, not at start: the operations pull in Kvm.Model, System.Text.Json and their
    // serializer options, which nothing before the handshake needs (terraform starts the provider
    // several times per command, and some starts only ask for the schema).
    private readonly Lazy<Dictionary<string, IResourceOperations>> _resources;
    private readonly Lazy<Dictionary<string, IDataSourceOperations>> _dataSources;
    private AgentClients? _clients;
    private ProviderSettings? _settings;

    public AgentBackend()
    {
        _resources = new(() => new(StringComparer.Ordinal)
        {
            ["kvm_vm"] = new VmOperations(this),
            ["kvm_volume"] = new VolumeOperations(this),
            ["kvm_image"] = new ImageOperations(this),
            ["kvm_storage_pool"] = new StoragePoolOperations(this),
            ["kvm_network"] = new NetworkOperations(this),
            ["kvm_snapshot"] = new SnapshotOperations(this),
        });
        _dataSources = new(() => new(StringComparer.Ordinal)
        {
            ["kvm_host"] = new HostLookup(this),
            ["kvm_vm"] = new VmLookup(this),
            ["kvm_vm_addresses"] = new VmAddressesLookup(this),
        });
    }

    public IResourceOperations? Resource(string typeName) => _resources.Value.GetValueOrDefault(typeName);

    public IDataSourceOperations? DataSource(string typeName) => _dataSources.Value.GetValueOrDefault(typeName);

    public void Configure(ProviderSettings settings)
    {
        _settings = settings;
        var previous = Interlocked.Exchange(ref _clients, new AgentClients(settings.EndpointFor, settings.Token, settings.CaCertPem, settings.Insecure));
        previous?.Dispose();
    }

    public KvmClient For(string host)
    {
        if (_clients is null || _settings is null)
            throw new ProviderConfigurationException("The provider is not configured yet.");
        if (_settings.Unknown.Contains("token"))
            throw new ProviderConfigurationException("The provider's token depends on a value that is not known yet.");
        return _clients.For(host);
    }

    public void Dispose() => _clients?.Dispose();
}
