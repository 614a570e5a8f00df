using Kvm.Client;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Planning;
using static Kvm.Terraform.Tests.Provider.Values;

namespace Kvm.Terraform.Tests.Provider;

/// <summary>The plan's restart warning follows <c>hotplug</c>: a vCPU change on a running VM warns unless <c>cpu</c> is in it; the watchdog action never warns.</summary>
public class HotplugPlanTests
{
    private static readonly IResourceOperations VmOps = new AgentBackend().Resource("kvm_vm")!;

    private const string Prior = """
        { "id": "100", "vm_id": 100, "status": "running", "pid": 4242, "name": "web", "cpu": { "cores": 4, "vcpus": 2 }, "watchdog": { "action": "reset" } HOTPLUG }
        """;

    private static IReadOnlyList<Diagnostic> Warnings(string hotplug, string change)
    {
        var prior = Of(VmType, Prior.Replace("HOTPLUG", hotplug, StringComparison.Ordinal));
        var configJson = Prior.Replace("\"id\": \"100\", \"vm_id\": 100, \"status\": \"running\", \"pid\": 4242, ", "", StringComparison.Ordinal)
            .Replace("HOTPLUG", hotplug, StringComparison.Ordinal);
        var config = Of(VmType, change == "vcpus"
            ? configJson.Replace("\"vcpus\": 2", "\"vcpus\": 3", StringComparison.Ordinal)
            : configJson.Replace("\"reset\"", "\"pause\"", StringComparison.Ordinal));
        return Planner.Plan(VmType, VmOps, prior, config, config).Diagnostics;
    }

    [Fact]
    public void A_vcpu_change_warns_of_a_restart_without_cpu_in_hotplug()
    {
        var warning = Assert.Single(Warnings("", "vcpus"));
        Assert.Equal(Diagnostic.Types.Severity.Warning, warning.Severity);
        Assert.Contains("cpu.vcpus", warning.Detail, StringComparison.Ordinal);
        Assert.Single(Warnings(", \"hotplug\": [\"disk\", \"network\", \"usb\", \"memory\"]", "vcpus"));
    }

    [Fact]
    public void With_cpu_in_hotplug_a_vcpu_change_is_live_and_the_watchdog_action_always_is()
    {
        Assert.Empty(Warnings(", \"hotplug\": [\"cpu\"]", "vcpus"));
        Assert.Empty(Warnings("", "watchdog"));
    }
}
