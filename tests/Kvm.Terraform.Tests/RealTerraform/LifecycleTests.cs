using Kvm.Tests.Shared;
using System.Text.Json.Nodes;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>The real terraform, the built provider, a real kvm-agent and real QEMU (TCG), end to end.</summary>
[Collection(TerraformCollection.Name)]
public class LifecycleTests(TerraformFixture terraform)
{
    private static (string Kernel, string Initrd) Guest(string root) =>
        (Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(root, ".work", "guest", "vmlinuz"),
         Environment.GetEnvironmentVariable("KVM_TEST_INITRD") ?? Path.Combine(root, ".work", "guest", "initrd.img"));

    private string Config(AgentProcess agent, string body, string? hosts = null)
    {
        var (kernel, initrd) = Guest(terraform.RepoRoot);
        return TerraformWorkspace.Header(agent, hosts) + $$"""
            locals {
              kernel = "{{kernel}}"
              initrd = "{{initrd}}"
            }

            {{body}}
            """;
    }

    private static string Vm(string extra) => $$"""
        resource "kvm_vm" "t" {
          name    = "tf-life"
          kernel  = local.kernel
          initrd  = local.initrd
          cmdline = "console=ttyS0"
          memory  = { size_mib = 128 }
          # The test guest ignores ACPI power-off: do not wait long before stopping it by force.
          update_policy = { shutdown_timeout_seconds = 3 }
          {{extra}}
        }
        """;

    private void Write(string dir, string content) => File.WriteAllText(Path.Combine(dir, "main.tf"), content);

    private CommandResult Apply(string dir)
    {
        var apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
        return apply;
    }

    private void AssertEmptyPlan(string dir)
    {
        var plan = terraform.Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 0, "expected no changes:\n" + plan.Output);
    }

    private CommandResult PlanWithChanges(string dir)
    {
        var plan = terraform.Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 2, "expected changes:\n" + plan.Output);
        return plan;
    }

    private JsonNode State(string dir, string address = "kvm_vm.t")
    {
        var show = terraform.Run(dir, "show", "-json", "-no-color");
        Assert.True(show.ExitCode == 0, show.Output);
        var resources = JsonNode.Parse(show.Stdout)!["values"]!["root_module"]!["resources"]!.AsArray();
        return resources.Single(r => (string)r!["address"]! == address)!["values"]!;
    }

    [Fact]
    public async Task A_vm_goes_through_its_whole_lifecycle()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var dir = terraform.NewWorkDirectory(Config(agent, Vm("description = \"one\"")));
        terraform.Init(dir);

        Apply(dir);
        var created = State(dir);
        var vmId = (long)created["vm_id"]!;
        Assert.Equal("running", (string)created["status"]!);
        AssertEmptyPlan(dir);

        // In place, live.
        Write(dir, Config(agent, Vm("description = \"two\"")));
        Assert.Contains("updated in-place", PlanWithChanges(dir).Stdout, StringComparison.Ordinal);
        Apply(dir);
        Assert.Equal("two", (string)State(dir)["description"]!);
        AssertEmptyPlan(dir);

        // Needs a restart: the plan warns, apply restarts (update_policy.restart defaults to auto).
        var pid = (long)State(dir)["pid"]!;
        Write(dir, Config(agent, Vm("description = \"two\"\n  cpu = { cores = 2 }")));
        var restartPlan = PlanWithChanges(dir);
        Assert.Contains("Changes need a restart of the VM", restartPlan.Output, StringComparison.Ordinal);
        Apply(dir);
        var restarted = State(dir);
        Assert.Equal("running", (string)restarted["status"]!);
        Assert.NotEqual(pid, (long)restarted["pid"]!);
        Assert.Empty(restarted["pending_changes"]?.AsArray() ?? []);
        AssertEmptyPlan(dir);

        // CPU limit and weight change live: same QEMU, the values in the VM's cgroup.
        pid = (long)State(dir)["pid"]!;
        Write(dir, Config(agent, Vm("description = \"two\"\n  cpu = { cores = 2, limit = 0.5 }")));
        Apply(dir);
        Write(dir, Config(agent, Vm("description = \"two\"\n  cpu = { cores = 2, limit = 1.5, weight = 300 }")));
        Assert.DoesNotContain("Changes need a restart of the VM", PlanWithChanges(dir).Output, StringComparison.Ordinal);
        Apply(dir);
        var live = State(dir);
        Assert.Equal(pid, (long)live["pid"]!);
        Assert.Equal(1.5, (double)live["cpu"]!["limit"]!);
        Assert.Equal(300, (long)live["cpu"]!["weight"]!);
        AssertEmptyPlan(dir);
        if (File.Exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")) // cgroup v1, as on the test machine
            Assert.Equal("150000", File.ReadAllText($"/sys/fs/cgroup/cpu/{agent.CgroupParent}/vm-{vmId}/cpu.cfs_quota_us").Trim());

        // Create-only: replacement.
        var body = Vm("description = \"two\"\n  cpu = { cores = 2 }\n  vm_id = 4242");
        Write(dir, Config(agent, body));
        Assert.Contains("must be replaced", PlanWithChanges(dir).Stdout, StringComparison.Ordinal);
        Apply(dir);
        Assert.Equal(4242, (long)State(dir)["vm_id"]!);
        Assert.Null(await agent.Client.FindVmAsync(vmId));
        AssertEmptyPlan(dir);

        // Import by CLI, then by an import block.
        Assert.Equal(0, terraform.Run(dir, "state", "rm", "kvm_vm.t").ExitCode);
        var import = terraform.Run(dir, "import", "-input=false", "-no-color", "kvm_vm.t", "4242");
        Assert.True(import.ExitCode == 0, import.Output);
        AssertEmptyPlan(dir);
        Assert.Equal(0, terraform.Run(dir, "state", "rm", "kvm_vm.t").ExitCode);
        Write(dir, Config(agent, body + "\nimport {\n  to = kvm_vm.t\n  id = \"4242\"\n}\n"));
        Assert.Contains("1 to import, 0 to add, 0 to change, 0 to destroy", terraform.Run(dir, "plan", "-input=false", "-no-color").Stdout, StringComparison.Ordinal);
        Apply(dir);
        Write(dir, Config(agent, body));
        AssertEmptyPlan(dir);

        // Drift: stopped behind terraform's back, then deleted.
        await agent.Client.StopVmAsync(4242);
        Assert.Contains("power_state", PlanWithChanges(dir).Stdout, StringComparison.Ordinal);
        Apply(dir);
        Assert.Equal("running", (await agent.Client.GetVmAsync(4242)).Value.Status);
        AssertEmptyPlan(dir);
        await agent.Client.DeleteVmAsync(4242, Kvm.Client.RunningVmDeletion.Force);
        Assert.Contains("1 to add", PlanWithChanges(dir).Stdout, StringComparison.Ordinal);
        Apply(dir);
        AssertEmptyPlan(dir);

        var destroy = terraform.Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
        Assert.True(destroy.ExitCode == 0, destroy.Output);
        Assert.Empty(await agent.Client.ListVmsAsync());
    }

    [Fact]
    public async Task Resources_land_on_the_host_they_name()
    {
        using var first = await AgentProcess.StartAsync(terraform.RepoRoot);
        // The provider's token serves every host.
        using var second = await AgentProcess.StartAsync(terraform.RepoRoot, first.Token);
        var body = """
            resource "kvm_vm" "a" {
              name   = "on-first"
              kernel = local.kernel
              initrd = local.initrd
              memory = { size_mib = 128 }
              update_policy = { shutdown_timeout_seconds = 3 }
            }

            resource "kvm_vm" "b" {
              host   = "second"
              name   = "on-second"
              kernel = local.kernel
              initrd = local.initrd
              memory = { size_mib = 128 }
              update_policy = { shutdown_timeout_seconds = 3 }
            }
            """;
        var dir = terraform.NewWorkDirectory(Config(first, body, $"hosts = {{ second = \"{second.Endpoint}\" }}"));
        terraform.Init(dir);
        Apply(dir);
        Assert.Equal(["on-first"], (await first.Client.ListVmsAsync()).Select(v => v.Name));
        Assert.Equal(["on-second"], (await second.Client.ListVmsAsync()).Select(v => v.Name));
        AssertEmptyPlan(dir);
        Assert.Equal(0, terraform.Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color").ExitCode);
        Assert.Empty(await second.Client.ListVmsAsync());
    }

    [Fact]
    public async Task The_quickstart_example_boots_the_test_guest()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var (kernel, initrd) = Guest(terraform.RepoRoot);
        var dir = terraform.NewWorkDirectory(File.ReadAllText(Path.Combine(terraform.RepoRoot, "examples", "terraform", "quickstart", "main.tf")));
        var env = new Dictionary<string, string> { ["KVM_ENDPOINT"] = agent.Endpoint, ["KVM_TOKEN"] = agent.Token };
        terraform.Init(dir);
        var apply = terraform.Run(dir, env, "apply", "-auto-approve", "-input=false", "-no-color", "-var", $"kernel={kernel}", "-var", $"initrd={initrd}");
        Assert.True(apply.ExitCode == 0, apply.Output);
        var outputs = JsonNode.Parse(terraform.Run(dir, env, "output", "-json").Stdout)!;
        Assert.NotNull(outputs["vm_id"]?["value"]);
        var serialLog = (string)outputs["serial_log"]!["value"]!;
        var booted = false;
        for (var i = 0; i < 240 && !booted; i++)
        {
            booted = File.Exists(serialLog) && (await File.ReadAllTextAsync(serialLog)).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal);
            if (!booted)
                await Task.Delay(500);
        }
        Assert.True(booted, $"the guest did not print its marker to {serialLog}");
        var plan = terraform.Run(dir, env, "plan", "-input=false", "-no-color", "-detailed-exitcode", "-var", $"kernel={kernel}", "-var", $"initrd={initrd}");
        Assert.True(plan.ExitCode == 0, plan.Output);
        var destroy = terraform.Run(dir, env, "destroy", "-auto-approve", "-input=false", "-no-color", "-var", $"kernel={kernel}", "-var", $"initrd={initrd}");
        Assert.True(destroy.ExitCode == 0, destroy.Output);
        Assert.Empty(await agent.Client.ListVmsAsync());
    }
}
