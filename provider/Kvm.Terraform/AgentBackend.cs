using System.Text.Json.Nodes;
using Kvm.Client;
using Kvm.Client.Operations;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Terraform;

/// <summary>The production backend: the shared operations over the agents named by the provider block.</summary>
public sealed class AgentBackend : IProviderBackend
{
    private readonly Dictionary<string, IResourceOperations> _resources;
    private readonly Dictionary<string, IDataSourceOperations> _dataSources;
    private ProviderSettings? _settings;

    public AgentBackend()
    {
        _resources = new(StringComparer.Ordinal)
        {
            ["kvm_vm"] = new UnavailableOperations<Vm, VmSpec>("vm_id"),
            ["kvm_volume"] = new UnavailableOperations<Volume, VolumeSpec>("volume_id"),
            ["kvm_storage_pool"] = new UnavailableOperations<StoragePool, StoragePoolSpec>("name"),
            ["kvm_network"] = new UnavailableOperations<Network, NetworkSpec>("name"),
        };
        _dataSources = new(StringComparer.Ordinal)
        {
            ["kvm_host"] = new UnavailableLookup(typeof(HostInfo)),
            ["kvm_vm"] = new UnavailableLookup(typeof(Vm)),
        };
    }

    public ProviderSettings Settings => _settings ?? throw new ProviderConfigurationException("The provider is not configured.");

    public IResourceOperations? Resource(string typeName) => _resources.GetValueOrDefault(typeName);

    public IDataSourceOperations? DataSource(string typeName) => _dataSources.GetValueOrDefault(typeName);

    public void Configure(ProviderSettings settings) => _settings = settings;

    private const string Missing = "this build of terraform-provider-kvm has no agent client yet (Kvm.Client has not landed).";

    private sealed class UnavailableOperations<TModel, TSpec>(string idAttribute) : ModelOperations<TModel, TSpec>(idAttribute)
        where TSpec : class
        where TModel : class, TSpec
    {
        public override Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken) => throw new NotSupportedException(Missing);

        public override Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken) => throw new NotSupportedException(Missing);

        public override Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken) => throw new NotSupportedException(Missing);

        public override Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken) => throw new NotSupportedException(Missing);
    }

    private sealed class UnavailableLookup(Type model) : IDataSourceOperations
    {
        public Type ModelType => model;

        public IReadOnlyList<ValidationError> Validate(JsonObject arguments) => [];

        public Task<JsonObject> ReadAsync(string host, JsonObject arguments, CancellationToken cancellationToken) => throw new NotSupportedException(Missing);
    }
}
