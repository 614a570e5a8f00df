using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Client.Operations;

public sealed partial class VmOperations : IMovableOperations
{
    /// <inheritdoc />
    public bool MovesOnHostChange(JsonObject config) => config["migration"]?["enabled"] is JsonValue enabled && enabled.TryGetValue<bool>(out var on) && on;

    /// <inheritdoc />
    public async Task<JsonObject> MoveAsync(string fromHost, string toHost, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken)
    {
        var spec = SpecOf(config);
        ThrowIfInvalid(Validator.Validate(spec));
        if (spec.Migration?.Enabled != true)
            throw new ModelValidationException([new ValidationError("migration.enabled", "a host change moves the VM only with migration.enabled = true; otherwise the VM is replaced.")]);
        var vmId = VmId(id);
        var source = agents.For(fromHost);
        var target = agents.For(toHost);
        if (ReferenceEquals(source, target))
            return await UpdateAsync(toHost, id, prior, config, cancellationToken).ConfigureAwait(false); // two names for one agent
        await VmMigration.MigrateAsync(source, target, vmId, spec.Migration.Online ?? true, null, cancellationToken).ConfigureAwait(false);
        return await UpdateAsync(toHost, id, prior, config, cancellationToken).ConfigureAwait(false);
    }
}
