using System.Text.Json.Nodes;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

/// <summary>A read-only lookup (Terraform data source, Pulumi function) in the model's JSON.</summary>
public interface IDataSourceOperations
{
    /// <summary>The model type the lookup returns.</summary>
    Type ModelType { get; }

    /// <summary>Pure checks of the lookup's arguments.</summary>
    IReadOnlyList<ValidationError> Validate(JsonObject arguments);

    /// <summary>Reads the object from the agent on <paramref name="host"/> ("" for the default).</summary>
    Task<JsonObject> ReadAsync(string host, JsonObject arguments, CancellationToken cancellationToken);
}

/// <summary>
/// A create failed after the resource came into existence (e.g. the VM was defined but did not start):
/// the plugins record <see cref="Created"/> so the resource stays tracked, and report the failure.
/// </summary>
public sealed class PartialCreateException(JsonObject created, Exception inner)
    : Exception($"created, then failed: {inner.Message}", inner)
{
    /// <summary>The resource as read back after the failure.</summary>
    public JsonObject Created { get; } = created;
}
