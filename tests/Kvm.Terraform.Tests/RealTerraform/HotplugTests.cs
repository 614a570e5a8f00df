using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// Real terraform against a real agent in its own network namespace: a disk and a bridged NIC added to a running VM
/// are plugged in live (no restart warning; <c>update_policy.restart = "fail"</c> would refuse a restart), the VM keeps
/// its QEMU, the next plan is empty, and removing them again is live too (the busybox guest releases the PCI devices).
/// </summary>
[Collection(TerraformCollection.Name)]
public class HotplugTests(TerraformFixture terraform)
{
    private string Config(AgentProcess agent, bool more)
    {
        var kernel = Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "vmlinuz");
        var initrd = Environment.GetEnvironmentVariable("KVM_TEST_INITRD") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "initrd.img");
        var disk = more ? "scsi1 = { size_gib = 1 }" : "";
        var nic = more ? "net1 = { bridge = kvm_network.lab.name }" : "";
        return TerraformWorkspace.Header(agent) + $$"""
            resource "kvm_network" "lab" {
              name    = "kvmhpbr0"
              address = "192.168.78.1/24"
            }

            resource "kvm_vm" "h" {
              name    = "hotplug"
              kernel  = "{{kernel}}"
              initrd  = "{{initrd}}"
              cmdline = "console=ttyS0 panic=-1"
              memory  = { size_mib = 256 }
              display = { vga = "none", vnc = false }
              update_policy = { restart = "fail" }
              disks = {
                scsi0 = { size_gib = 1 }
                {{disk}}
              }
              network_interfaces = {
                net0 = { bridge = kvm_network.lab.name }
                {{nic}}
              }
            }
            """;
    }

    [Fact]
    public async Task A_disk_and_a_nic_added_to_a_running_vm_are_plugged_in_live_and_the_next_plan_is_empty()
    {
        using var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot);
        var netns = agent.Netns!;
        var dir = terraform.NewWorkDirectory(Config(agent, more: false));
        terraform.Init(dir);
        var apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
        var vm = (await agent.Client.ListVmsAsync()).Single();
        var id = vm.VmId!.Value;
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (!(File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            await Task.Delay(200);

        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, more: true));
        var plan = terraform.Run(dir, "plan", "-input=false", "-no-color");
        Assert.True(plan.ExitCode == 0, plan.Output);
        Assert.DoesNotContain("restart", plan.Output, StringComparison.OrdinalIgnoreCase);
        apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
        var after = (await agent.Client.GetVmAsync(id)).Value;
        Assert.Equal(vm.Pid, after.Pid);
        Assert.Null(after.PendingChanges);
        Assert.Contains($"tap{id}i1", AgentProcess.Ip("-n", netns, "-o", "link", "show", "master", "kvmhpbr0"), StringComparison.Ordinal);
        var empty = terraform.Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(empty.ExitCode == 0, empty.Output);

        // And out again, live: the tap goes with the NIC.
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, more: false));
        apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
        after = (await agent.Client.GetVmAsync(id)).Value;
        Assert.Equal(vm.Pid, after.Pid);
        Assert.Null(after.PendingChanges);
        Assert.DoesNotContain($"tap{id}i1", AgentProcess.Ip("-n", netns, "-o", "link", "show"), StringComparison.Ordinal);
        empty = terraform.Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(empty.ExitCode == 0, empty.Output);

        var destroy = terraform.Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
        Assert.True(destroy.ExitCode == 0, destroy.Output);
        Assert.DoesNotContain($"tap{id}i", AgentProcess.Ip("-n", netns, "-o", "link", "show"), StringComparison.Ordinal);
    }
}
