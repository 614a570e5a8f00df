using System.Text.Json;
using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

/// <summary>The host's facts (<c>kvm_host</c>).</summary>
public sealed class HostLookup(IAgentClients agents) : IDataSourceOperations
{
    /// <inheritdoc />
    public Type ModelType => typeof(HostInfo);

    /// <inheritdoc />
    public IReadOnlyList<ValidationError> Validate(JsonObject arguments) => [];

    /// <inheritdoc />
    public async Task<JsonObject> ReadAsync(string host, JsonObject arguments, CancellationToken cancellationToken) =>
        (JsonObject)JsonSerializer.SerializeToNode(await agents.For(host).GetHostAsync(cancellationToken).ConfigureAwait(false), ModelJsonContext.Default.HostInfo)!;
}

/// <summary>An existing VM by <c>vm_id</c> or <c>name</c> (<c>data.kvm_vm</c>).</summary>
public sealed class VmLookup(IAgentClients agents) : IDataSourceOperations
{
    /// <inheritdoc />
    public Type ModelType => typeof(Vm);

    /// <inheritdoc />
    public IReadOnlyList<ValidationError> Validate(JsonObject arguments) =>
        arguments["vm_id"] is null && arguments["name"] is null
            ? [new ValidationError("vm_id", "set vm_id or name to choose the VM.")]
            : [];

    /// <inheritdoc />
    public async Task<JsonObject> ReadAsync(string host, JsonObject arguments, CancellationToken cancellationToken)
    {
        var client = agents.For(host);
        Vm? vm;
        if (arguments["vm_id"] is { } id)
        {
            vm = await client.FindVmAsync(id.GetValue<long>(), cancellationToken).ConfigureAwait(false);
            if (vm is not null && arguments["name"]?.GetValue<string>() is { } name && vm.Name != name)
                throw new ModelValidationException([new ValidationError("name", $"VM {vm.VmId} is named \"{vm.Name}\", not \"{name}\".")]);
        }
        else
        {
            var name = arguments["name"]!.GetValue<string>();
            vm = (await client.ListVmsAsync(cancellationToken).ConfigureAwait(false)).FirstOrDefault(v => v.Name == name);
        }
        if (vm is null)
            throw new ModelValidationException([new ValidationError(arguments["vm_id"] is null ? "name" : "vm_id", "no such VM on this host.")]);
        return (JsonObject)JsonSerializer.SerializeToNode(vm, ModelJsonContext.Default.Vm)!;
    }
}
