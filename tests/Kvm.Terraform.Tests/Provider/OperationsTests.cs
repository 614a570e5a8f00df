using System.Text.Json.Nodes;
using Kvm.Client.Operations;
using Kvm.Model;

namespace Kvm.Terraform.Tests.Provider;

public class OperationsTests
{
    [Theory]
    [InlineData(null, "running", null)]
    [InlineData(null, "stopped", "stopped")]
    [InlineData(null, "crashed", "stopped")]
    [InlineData("running", "paused", "paused")]
    [InlineData("stopped", "running", "running")]
    [InlineData("stopped", "stopped", "stopped")]
    [InlineData(null, "internal-error", null)]
    public void Read_reports_the_observed_power_state_when_it_drifted(string? desired, string status, string? reported)
    {
        var vm = VmOperations.WithObservedPowerState(new Vm { Name = "a", PowerState = desired, Status = status });
        Assert.Equal(reported, vm.PowerState);
    }

    [Fact]
    public void Validation_reports_wrong_json_types_at_the_attribute()
    {
        var ops = new AgentBackend().Resource("kvm_vm")!;
        var error = Assert.Single(ops.Validate(JsonNode.Parse("""{ "name": "a", "cpu": { "cores": 1.5 } }""")!.AsObject()));
        Assert.Equal("cpu.cores", error.Attribute);
        Assert.Contains("whole number", error.Detail, StringComparison.Ordinal);
        var keyed = Assert.Single(ops.Validate(JsonNode.Parse("""{ "name": "a", "disks": { "scsi0": { "size_gib": "big" } } }""")!.AsObject()));
        Assert.Equal("disks[\"scsi0\"].size_gib", keyed.Attribute);
    }

    [Fact]
    public void Ids_come_from_the_model_attribute()
    {
        var backend = new AgentBackend();
        Assert.Equal("100", backend.Resource("kvm_vm")!.IdOf(JsonNode.Parse("""{ "vm_id": 100 }""")!.AsObject()));
        Assert.Equal("default/d.qcow2", backend.Resource("kvm_volume")!.IdOf(JsonNode.Parse("""{ "volume_id": "default/d.qcow2" }""")!.AsObject()));
        Assert.Equal("br0", backend.Resource("kvm_network")!.IdOf(JsonNode.Parse("""{ "name": "br0" }""")!.AsObject()));
    }
}
