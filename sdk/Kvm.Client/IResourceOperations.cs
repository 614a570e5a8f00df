using System.Text.Json.Nodes;
using Kvm.Model.Validation;

namespace Kvm.Client;

/// <summary>
/// The lifecycle of one resource type as both plugins need it, in the model's JSON (snake_case
/// names equal to the HCL attribute names): the Terraform and Pulumi adapters decode their wire
/// values to JSON, call these, and encode the read-back JSON as the new state. State is always what
/// the agent returned, never the plan echoed.
/// </summary>
public interface IResourceOperations
{
    /// <summary>The model type behind the resource (e.g. <c>Vm</c>), whose schema drives the adapters.</summary>
    Type ModelType { get; }

    /// <summary>Pure checks of a configuration (declarations plus cross-field rules), keyed by attribute path.</summary>
    IReadOnlyList<ValidationError> Validate(JsonObject config);

    /// <summary>Pure checks of an update against the prior state (e.g. disks only grow).</summary>
    IReadOnlyList<ValidationError> ValidateUpdate(JsonObject prior, JsonObject config);

    /// <summary>The resource's id from its state (<c>vm_id</c>, <c>volume_id</c>, a name…), as a string.</summary>
    string IdOf(JsonObject state);

    /// <summary>Creates the resource on <paramref name="host"/> and returns it read back.</summary>
    Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken);

    /// <summary>Reads the resource back; null when it no longer exists.</summary>
    Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken);

    /// <summary>Applies <paramref name="config"/> to an existing resource and returns it read back.</summary>
    Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken);

    /// <summary>Deletes the resource; a resource that is already gone is success.</summary>
    Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken);
}
