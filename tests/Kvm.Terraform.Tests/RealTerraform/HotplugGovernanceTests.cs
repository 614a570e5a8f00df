using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// Real terraform against a real agent, <c>update_policy.restart = "fail"</c> throughout (any restart would fail the
/// apply): a new watchdog action applies live; with Proxmox's default <c>hotplug</c> a vCPU change warns at plan and the
/// apply refuses it; once <c>cpu</c> is in <c>hotplug</c> (a live change itself) the same change is plugged in live.
/// The VM keeps its QEMU all along.
/// </summary>
[Collection(TerraformCollection.Name)]
public class HotplugGovernanceTests(TerraformFixture terraform)
{
    private string Config(AgentProcess agent, string action, int vcpus, string? hotplug)
    {
        var kernel = Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "vmlinuz");
        var initrd = Environment.GetEnvironmentVariable("KVM_TEST_INITRD") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "initrd.img");
        return TerraformWorkspace.Header(agent) + $$"""
            resource "kvm_vm" "g" {
              name     = "governed"
              kernel   = "{{kernel}}"
              initrd   = "{{initrd}}"
              cmdline  = "console=ttyS0 panic=-1"
              memory   = { size_mib = 128 }
              display  = { vga = "none", vnc = false }
              cpu      = { cores = 2, vcpus = {{vcpus}} }
              watchdog = { model = "ib700", action = "{{action}}" }
              update_policy = { restart = "fail" }
              {{(hotplug is null ? "" : "hotplug = " + hotplug)}}
            }
            """;
    }

    private (int ExitCode, string Output) Apply(string dir, string body)
    {
        File.WriteAllText(Path.Combine(dir, "main.tf"), body);
        var apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        return (apply.ExitCode, apply.Output);
    }

    [Fact]
    public async Task The_watchdog_action_is_live_and_vcpus_follow_hotplug()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var dir = terraform.NewWorkDirectory(Config(agent, "reset", 1, null));
        terraform.Init(dir);
        var apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
        var vm = (await agent.Client.ListVmsAsync()).Single();
        var id = vm.VmId!.Value;

        // The watchdog action: no warning, applied to the running VM.
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, "pause", 1, null));
        var plan = terraform.Run(dir, "plan", "-input=false", "-no-color");
        Assert.DoesNotContain("restart of the VM", plan.Output, StringComparison.Ordinal);
        var (code, output) = Apply(dir, Config(agent, "pause", 1, null));
        Assert.True(code == 0, output);
        var after = (await agent.Client.GetVmAsync(id)).Value;
        Assert.Equal(vm.Pid, after.Pid);
        Assert.Equal("pause", after.Watchdog!.Action);
        Assert.Null(after.PendingChanges);

        // vCPUs with Proxmox's default hotplug (no cpu): a restart change, warned at plan, refused by restart = "fail".
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, "pause", 2, null));
        plan = terraform.Run(dir, "plan", "-input=false", "-no-color");
        Assert.True(plan.ExitCode == 0, plan.Output);
        Assert.Contains("Changes need a restart of the VM", plan.Output, StringComparison.Ordinal);
        Assert.Contains("cpu.vcpus", plan.Output, StringComparison.Ordinal);
        (code, output) = Apply(dir, Config(agent, "pause", 2, null));
        Assert.NotEqual(0, code);
        Assert.Contains("restart", output, StringComparison.Ordinal);
        after = (await agent.Client.GetVmAsync(id)).Value;
        Assert.Equal(vm.Pid, after.Pid);
        Assert.Equal(1, after.Cpu!.Vcpus);

        // cpu into hotplug (live), then the same vCPU change is plugged in live.
        const string WithCpu = "[\"disk\", \"network\", \"usb\", \"cpu\"]";
        (code, output) = Apply(dir, Config(agent, "pause", 1, WithCpu));
        Assert.True(code == 0, output);
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, "pause", 2, WithCpu));
        plan = terraform.Run(dir, "plan", "-input=false", "-no-color");
        Assert.DoesNotContain("restart of the VM", plan.Output, StringComparison.Ordinal);
        (code, output) = Apply(dir, Config(agent, "pause", 2, WithCpu));
        Assert.True(code == 0, output);
        after = (await agent.Client.GetVmAsync(id)).Value;
        Assert.Equal(vm.Pid, after.Pid);
        Assert.Equal(2, after.Cpu!.Vcpus);
        Assert.Null(after.PendingChanges);
        var empty = terraform.Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(empty.ExitCode == 0, empty.Output);

        var destroy = terraform.Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
        Assert.True(destroy.ExitCode == 0, destroy.Output);
    }
}
