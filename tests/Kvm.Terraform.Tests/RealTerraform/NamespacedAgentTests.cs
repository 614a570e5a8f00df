using Kvm.Model;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// The test set-up every networking test stands on: a real agent inside a network namespace of its own, reached over
/// its unix socket by terraform in the host's namespace. Its bridges and taps never appear on the host.
/// </summary>
[Collection(TerraformCollection.Name)]
public class NamespacedAgentTests(TerraformFixture terraform)
{
    [Fact]
    public async Task A_namespaced_agent_keeps_its_bridges_and_taps_off_the_host_and_terraform_reaches_it_over_its_socket()
    {
        string netns;
        using (var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot))
        {
            netns = agent.Netns!;
            Assert.StartsWith("unix:///", agent.Endpoint, StringComparison.Ordinal);
            var dir = terraform.NewWorkDirectory(TerraformWorkspace.Header(agent) + $$"""
                resource "kvm_network" "lab" {
                  name    = "kvmnsbr0"
                  address = "192.168.77.1/24"
                }

                resource "kvm_vm" "n" {
                  name   = "ns-node"
                  kernel = "{{Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "vmlinuz")}}"
                  memory = { size_mib = 128 }
                  update_policy = { shutdown_timeout_seconds = 3 }
                  network_interfaces = {
                    net0 = { bridge = kvm_network.lab.name }
                  }
                }
                """);
            terraform.Init(dir);
            var apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
            Assert.True(apply.ExitCode == 0, apply.Output);
            var vm = (await agent.Client.ListVmsAsync()).Single();
            Assert.Equal("running", vm.Status);

            var links = AgentProcess.Ip("-n", netns, "-o", "link", "show");
            Assert.Contains("kvmnsbr0", links, StringComparison.Ordinal);
            Assert.Contains($"tap{vm.VmId}i0", links, StringComparison.Ordinal);
            Assert.Contains("192.168.77.1/24", AgentProcess.Ip("-n", netns, "-o", "addr", "show", "dev", "kvmnsbr0"), StringComparison.Ordinal);
            var hostLinks = AgentProcess.Ip("-o", "link", "show");
            Assert.DoesNotContain("kvmnsbr0", hostLinks, StringComparison.Ordinal);
            Assert.DoesNotContain($"tap{vm.VmId}i0", hostLinks, StringComparison.Ordinal);
            // The VM's QEMU runs in the namespace too, so its tap is the namespace's.
            Assert.Contains((int)vm.Pid!.Value, agent.NamespacePids());

            var destroy = terraform.Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
            Assert.True(destroy.ExitCode == 0, destroy.Output);
            Assert.DoesNotContain("kvmnsbr0", AgentProcess.Ip("-n", netns, "-o", "link", "show"), StringComparison.Ordinal);
        }
        Assert.DoesNotContain(netns, AgentProcess.Ip("netns", "list"), StringComparison.Ordinal);
    }
}
