using Kvm.Client.Operations;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Schema;
using Kvm.Terraform.Values;

namespace Kvm.Terraform.Planning;

/// <summary>A <c>host</c> change of a resource that migrates (a VM with <c>migration.enabled</c>): an update with a warning, not a replacement.</summary>
public static class MigrationPlan
{
    /// <summary>True when the planned value asks for the host change to move the resource (known values only; unknown means replace).</summary>
    public static bool Moves(TfResourceType resource, Kvm.Client.IResourceOperations operations, CtyValue planned)
    {
        if (operations is not IMovableOperations || resource.Block.Find("migration") is null)
            return false;
        var migration = planned.GetAttr("migration");
        if (!migration.IsKnown || migration.IsNull)
            return false;
        var enabled = migration.GetAttr("enabled");
        return enabled.IsKnown && !enabled.IsNull && enabled.AsBool();
    }

    /// <summary>The warning that says what apply will do, and errors for what the move cannot carry.</summary>
    public static IEnumerable<Diagnostic> Diagnostics(TfResourceType resource, CtyValue prior, CtyValue planned)
    {
        var from = Name(ModelValues.StringAttr(prior, TerraformSchema.Host));
        var to = Name(ModelValues.StringAttr(planned, TerraformSchema.Host));
        var status = ModelValues.StringAttr(prior, "status");
        var online = planned.GetAttr("migration").GetAttr("online");
        var live = !online.IsKnown || online.IsNull || online.AsBool();
        var how = status is "running" or "paused"
            ? live ? "live: memory and disks are copied while it runs, with a pause of milliseconds at the switch-over"
                   : "offline (migration.online = false): it is shut down, copied, and started on the new host"
            : "cold: it is stopped, so its disks are copied";
        var errors = new List<Diagnostic>();
        try
        {
            // Unknown values are left out: the rules judge what is known now, and the agents check again.
            if (System.Text.Json.JsonSerializer.Deserialize(ModelValues.ToSpecJson(planned, resource.Block.Attributes), typeof(VmSpec), LenientJson) is VmSpec spec)
                errors.AddRange(MigrationRules.Unsupported(spec).Select(Terraform.Diagnostics.FromValidation));
        }
        catch (System.Text.Json.JsonException)
        {
            // Validation reports malformed values on its own.
        }
        if (errors.Count > 0)
            return errors;
        return [Terraform.Diagnostics.Warning(
            $"VM will be migrated from {from} to {to}",
            $"host changes and migration.enabled is true, so apply moves the VM instead of replacing it, {how}. Its inline disks and EFI variable store " +
            "go with it; it keeps its vm_id, which must be free on the new host. On any failure before the new host has it, the VM stays where it is.",
            AttrPath.Root.Attr(TerraformSchema.Host))];
    }

    private static string Name(string? host) => host is null or "" ? "the default host" : $"\"{host}\"";

    private static readonly System.Text.Json.JsonSerializerOptions LenientJson =
        new(ModelJson.Options) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Skip };
}
