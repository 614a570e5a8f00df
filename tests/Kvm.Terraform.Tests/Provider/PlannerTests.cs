using Kvm.Client;
using Kvm.Model.Schema;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Planning;
using static Kvm.Terraform.Tests.Provider.Values;

namespace Kvm.Terraform.Tests.Provider;

public class PlannerTests
{
    private static readonly IResourceOperations VmOps = new AgentBackend().Resource("kvm_vm")!;
    private static readonly IResourceOperations VolumeOps = new AgentBackend().Resource("kvm_volume")!;

    private const string PriorJson = """
        {
          "id": "100", "vm_id": 100, "name": "web", "tags": ["b", "a"],
          "cpu": { "cores": 2 },
          "disks": { "scsi0": { "size_gib": 4, "format": "qcow2" } },
          "network_interfaces": { "net0": { "model": "virtio" } },
          "status": "running", "pid": 4242, "started_at": "2026-01-01T00:00:00Z", "accelerator": "tcg",
          "pending_changes": [], "mac_addresses": { "net0": "52:54:00:00:01:00" },
          "console_endpoint": "vnc://127.0.0.1:5900", "serial_log": "/run/kvm/100/serial.log"
        }
        """;

    private const string ConfigJson = """
        {
          "name": "web", "tags": ["a", "b"],
          "cpu": { "cores": 2 },
          "disks": { "scsi0": { "size_gib": 4, "format": "qcow2" } },
          "network_interfaces": { "net0": { "model": "virtio" } }
        }
        """;

    private static PlanOutcome Plan(CtyValue prior, CtyValue config) => Planner.Plan(VmType, VmOps, prior, config, config);

    [Fact]
    public void Create_plans_the_config_with_agent_set_values_unknown()
    {
        var config = Of(VmType, ConfigJson);
        var outcome = Plan(CtyValue.Null(VmType.Type), config);
        var planned = outcome.Planned;
        Assert.Empty(outcome.Diagnostics);
        Assert.False(planned.GetAttr("vm_id").IsKnown);
        Assert.False(planned.GetAttr("id").IsKnown);
        Assert.False(planned.GetAttr("status").IsKnown);
        Assert.False(planned.GetAttr("serial_log").IsKnown);
        Assert.True(planned.GetAttr("machine").IsNull);
        Assert.True(planned.GetAttr("host").IsNull);
        Assert.Equal(config.GetAttr("disks"), planned.GetAttr("disks"));
        Assert.Empty(outcome.RequiresReplace);
    }

    [Fact]
    public void Create_keeps_a_vm_id_the_user_set()
    {
        var config = Of(VmType, """{ "name": "web", "vm_id": 250 }""");
        var planned = Plan(CtyValue.Null(VmType.Type), config).Planned;
        Assert.Equal(250, planned.GetAttr("vm_id").AsInt64());
    }

    [Fact]
    public void An_unchanged_config_plans_the_prior_state_exactly()
    {
        var prior = Of(VmType, PriorJson);
        var outcome = Plan(prior, Of(VmType, ConfigJson));
        Assert.Same(prior, outcome.Planned);
        Assert.Empty(outcome.RequiresReplace);
        Assert.Empty(outcome.Diagnostics);
    }

    [Fact]
    public void An_update_keeps_config_and_stable_values_and_makes_volatile_ones_unknown()
    {
        var prior = Of(VmType, PriorJson);
        var config = Of(VmType, ConfigJson).WithAttr("description", CtyValue.String("new"));
        var outcome = Plan(prior, config);
        var planned = outcome.Planned;
        Assert.Equal("new", planned.GetAttr("description").AsString());
        Assert.Equal(100, planned.GetAttr("vm_id").AsInt64());
        Assert.Equal("100", planned.GetAttr("id").AsString());
        Assert.Equal(prior.GetAttr("serial_log"), planned.GetAttr("serial_log"));
        Assert.Equal(prior.GetAttr("mac_addresses"), planned.GetAttr("mac_addresses"));
        Assert.False(planned.GetAttr("status").IsKnown);
        Assert.False(planned.GetAttr("pid").IsKnown);
        Assert.False(planned.GetAttr("pending_changes").IsKnown);
        Assert.Empty(outcome.RequiresReplace);
        Assert.Empty(outcome.Diagnostics);
    }

    [Fact]
    public void Mac_addresses_become_unknown_when_network_interfaces_change()
    {
        var prior = Of(VmType, PriorJson);
        var config = Of(VmType, ConfigJson.Replace("\"net0\": { \"model\": \"virtio\" }", "\"net0\": { \"model\": \"virtio\" }, \"net1\": {}", StringComparison.Ordinal));
        Assert.False(Plan(prior, config).Planned.GetAttr("mac_addresses").IsKnown);
    }

    [Fact]
    public void A_create_only_change_requires_replacement_at_its_attribute_path()
    {
        var prior = Of(VmType, PriorJson);
        var config = Of(VmType, ConfigJson.Replace("\"format\": \"qcow2\"", "\"format\": \"raw\"", StringComparison.Ordinal));
        var outcome = Plan(prior, config);
        var path = Assert.Single(outcome.RequiresReplace);
        Assert.Equal("disks[\"scsi0\"].format", path.ToString());
        var proto = Diagnostics.ToProto(path);
        Assert.Equal("disks", proto.Steps[0].AttributeName);
        Assert.Equal("scsi0", proto.Steps[1].ElementKeyString);
        Assert.Equal("format", proto.Steps[2].AttributeName);
    }

    [Fact]
    public void Setting_a_create_only_value_to_its_default_does_not_replace()
    {
        var prior = Of(VmType, PriorJson.Replace(", \"format\": \"qcow2\"", "", StringComparison.Ordinal));
        var outcome = Plan(prior, Of(VmType, ConfigJson));
        Assert.Empty(outcome.RequiresReplace);
    }

    [Fact]
    public void Changing_host_requires_replacement()
    {
        var prior = Of(VmType, PriorJson);
        var config = Of(VmType, ConfigJson).WithAttr("host", CtyValue.String("lab2"));
        Assert.Contains(Plan(prior, config).RequiresReplace, p => p.ToString() == "host");
    }

    [Fact]
    public void A_restart_change_on_a_running_vm_warns_with_the_policy()
    {
        var prior = Of(VmType, PriorJson);
        var config = Of(VmType, ConfigJson.Replace("\"cores\": 2", "\"cores\": 4", StringComparison.Ordinal));
        var warning = Assert.Single(Plan(prior, config).Diagnostics);
        Assert.Equal(Diagnostic.Types.Severity.Warning, warning.Severity);
        Assert.Contains("cpu.cores", warning.Detail, StringComparison.Ordinal);
        Assert.Contains("\"auto\"", warning.Detail, StringComparison.Ordinal);
        Assert.Equal("cpu", warning.Attribute.Steps[0].AttributeName);
        Assert.Equal("cores", warning.Attribute.Steps[1].AttributeName);

        var never = Of(VmType, ConfigJson.Replace("\"cores\": 2 }", "\"cores\": 4 }, \"update_policy\": { \"restart\": \"never\" }", StringComparison.Ordinal));
        Assert.Contains("\"never\"", Assert.Single(Plan(prior, never).Diagnostics).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_restart_change_on_a_stopped_vm_does_not_warn()
    {
        var prior = Of(VmType, PriorJson.Replace("\"running\"", "\"stopped\"", StringComparison.Ordinal));
        var config = Of(VmType, ConfigJson.Replace("\"cores\": 2", "\"cores\": 4", StringComparison.Ordinal));
        Assert.Empty(Plan(prior, config).Diagnostics);
    }

    [Fact]
    public void Unknown_config_values_are_planned_unknown_and_never_fail_validation()
    {
        var config = Unknown(Of(VmType, """{ "name": "web", "disks": { "scsi0": { "size_gib": 0 } } }"""), "name");
        var disks = config.GetAttr("disks");
        var withUnknownSize = config.WithAttr("disks", CtyValue.Map(disks.Type.ElementType,
            ("scsi0", disks.Index("scsi0").WithAttr("size_gib", CtyValue.Unknown(CtyType.Number)))));
        var outcome = Plan(CtyValue.Null(VmType.Type), withUnknownSize);
        Assert.False(outcome.Planned.GetAttr("name").IsKnown);
        Assert.Empty(outcome.Diagnostics);

        var update = Plan(Of(VmType, PriorJson), Unknown(Of(VmType, ConfigJson), "cpu"));
        Assert.False(update.Planned.GetAttr("cpu").IsKnown);
    }

    [Fact]
    public void Known_bad_values_fail_with_the_attribute_path()
    {
        var config = Of(VmType, """{ "name": "web", "cpu": { "cores": 0 }, "disks": { "scsi0": { "size_gib": 1, "cache": "fast" } } }""");
        var diagnostics = Plan(CtyValue.Null(VmType.Type), config).Diagnostics;
        Assert.Equal(2, diagnostics.Count);
        Assert.All(diagnostics, d => Assert.Equal(Diagnostic.Types.Severity.Error, d.Severity));
        Assert.Contains(diagnostics, d => d.Attribute.Steps.Count == 2 && d.Attribute.Steps[1].AttributeName == "cores");
        Assert.Contains(diagnostics, d => d.Attribute.Steps.Count == 3 && d.Attribute.Steps[1].ElementKeyString == "scsi0" && d.Attribute.Steps[2].AttributeName == "cache");
    }

    [Fact]
    public void A_cross_field_error_next_to_an_unknown_value_waits_for_the_final_plan()
    {
        var config = Unknown(Of(VmType, """{ "name": "web", "initrd": "/boot/initrd" }"""), "kernel");
        Assert.Empty(Plan(CtyValue.Null(VmType.Type), config).Diagnostics);
        Assert.Single(Plan(CtyValue.Null(VmType.Type), Of(VmType, """{ "name": "web", "initrd": "/boot/initrd" }""")).Diagnostics);
    }

    [Fact]
    public void Shrinking_a_disk_is_an_error_at_plan_time()
    {
        var prior = Of(VmType, PriorJson);
        var config = Of(VmType, ConfigJson.Replace("\"size_gib\": 4", "\"size_gib\": 2", StringComparison.Ordinal));
        var error = Assert.Single(Plan(prior, config).Diagnostics, d => d.Severity == Diagnostic.Types.Severity.Error);
        Assert.Equal("size_gib", error.Attribute.Steps[2].AttributeName);
    }

    [Fact]
    public void A_destroy_plan_passes_through()
    {
        var outcome = Planner.Plan(VmType, VmOps, Of(VmType, PriorJson), CtyValue.Null(VmType.Type), CtyValue.Null(VmType.Type));
        Assert.True(outcome.Planned.IsNull);
    }

    [Fact]
    public void Volume_updates_keep_the_id_and_path_and_make_sizes_unknown()
    {
        var prior = Of(VolumeType, """{ "id": "default/d.qcow2", "volume_id": "default/d.qcow2", "name": "d.qcow2", "size_gib": 1, "path": "/p/d.qcow2", "capacity_bytes": 1073741824, "allocation_bytes": 1000, "attached_to": [] }""");
        var config = Of(VolumeType, """{ "name": "d.qcow2", "size_gib": 2 }""");
        var outcome = Planner.Plan(VolumeType, VolumeOps, prior, config, config);
        Assert.Equal("default/d.qcow2", outcome.Planned.GetAttr("volume_id").AsString());
        Assert.Equal("/p/d.qcow2", outcome.Planned.GetAttr("path").AsString());
        Assert.False(outcome.Planned.GetAttr("capacity_bytes").IsKnown);
        Assert.Empty(outcome.RequiresReplace);
        var rename = Of(VolumeType, """{ "name": "e.qcow2", "size_gib": 1 }""");
        Assert.Equal("name", Assert.Single(Planner.Plan(VolumeType, VolumeOps, prior, rename, rename).RequiresReplace).ToString());
    }

    [Fact]
    public void Unknown_paths_filter_errors_at_under_and_beside_them()
    {
        var errors = new[]
        {
            new Kvm.Model.Validation.ValidationError("disks[\"scsi0\"].size_gib", "x"),
            new Kvm.Model.Validation.ValidationError("initrd", "needs kernel"),
            new Kvm.Model.Validation.ValidationError("cpu.cores", "out of range"),
        };
        var kept = ConfigValidation.Filter(errors, [AttrPath.Root.Attr("disks").Key("scsi0"), AttrPath.Root.Attr("kernel")]);
        Assert.Equal("cpu.cores", Assert.Single(kept).Attribute);
    }
}
