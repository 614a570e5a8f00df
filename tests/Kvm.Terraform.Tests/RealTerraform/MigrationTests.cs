using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// The real terraform and provider with two real agents (hosts "a" and "b") and real QEMU (TCG): with
/// <c>migration.enabled</c> a host change is an in-place update that moves the running VM live with its disk; without it,
/// the same change plans a replacement.
/// </summary>
[Collection(TerraformCollection.Name)]
public class MigrationTests(TerraformFixture terraform)
{
    private string Config(AgentProcess a, AgentProcess b, string host, string migration)
    {
        var kernel = Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "vmlinuz");
        var initrd = Environment.GetEnvironmentVariable("KVM_TEST_INITRD") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "initrd.img");
        return TerraformWorkspace.Header(a, $"hosts = {{ a = \"{a.Endpoint}\", b = \"{b.Endpoint}\" }}") + $$"""
            resource "kvm_vm" "m" {
              host    = "{{host}}"
              name    = "tf-migrate"
              kernel  = "{{kernel}}"
              initrd  = "{{initrd}}"
              cmdline = "console=ttyS0"
              memory  = { size_mib = 128 }
              display = { vga = "none", vnc = false }
              disks   = { scsi0 = { size_gib = 1 } }
              update_policy = { shutdown_timeout_seconds = 3 }
              {{migration}}
            }
            """;
    }

    private CommandResult Run(string dir, params string[] args) => terraform.Run(dir, args);

    [Fact]
    public async Task A_host_change_with_migration_enabled_moves_the_running_vm_in_place_and_without_it_replaces_it()
    {
        using var a = await AgentProcess.StartAsync(terraform.RepoRoot);
        using var b = await AgentProcess.StartAsync(terraform.RepoRoot, a.Token);
        const string Enabled = "migration = { enabled = true }";
        var dir = terraform.NewWorkDirectory(Config(a, b, "a", Enabled));
        terraform.Init(dir);
        var apply = Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
        var onA = Assert.Single(await a.Client.ListVmsAsync());
        Assert.Equal("running", onA.Status);

        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(a, b, "b", Enabled));
        var plan = Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 2, plan.Output);
        Assert.Contains("VM will be migrated from \"a\" to \"b\"", plan.Output, StringComparison.Ordinal);
        Assert.Contains("will be updated in-place", plan.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("must be replaced", plan.Output, StringComparison.Ordinal);
        Assert.Contains("0 to add, 1 to change, 0 to destroy", plan.Output, StringComparison.Ordinal);

        apply = Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
        Assert.Empty(await a.Client.ListVmsAsync());
        var onB = Assert.Single(await b.Client.ListVmsAsync());
        Assert.Equal(onA.VmId, onB.VmId);
        Assert.Equal("running", onB.Status);
        Assert.True(File.Exists(Path.Combine(b.DataDirectory, "pools", "default", $"vm-{onB.VmId}-disk-scsi0.qcow2")));
        Assert.False(File.Exists(Path.Combine(a.DataDirectory, "pools", "default", $"vm-{onA.VmId}-disk-scsi0.qcow2")));
        var empty = Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(empty.ExitCode == 0, "expected no changes after the migration:\n" + empty.Output);

        // What a migration cannot carry is an error at plan time, at the attribute (nothing is applied).
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(a, b, "a", Enabled + "\n  tpm = {}"));
        var refused = Run(dir, "plan", "-input=false", "-no-color");
        Assert.True(refused.ExitCode == 1, refused.Output);
        Assert.Contains("cannot be migrated", refused.Output, StringComparison.Ordinal);
        Assert.Contains("tpm", refused.Output, StringComparison.Ordinal);

        // Without migration.enabled the same kind of change re-creates the VM.
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(a, b, "a", ""));
        var replace = Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(replace.ExitCode == 2, replace.Output);
        Assert.Contains("must be replaced", replace.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("will be migrated", replace.Output, StringComparison.Ordinal);

        var destroy = Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
        Assert.True(destroy.ExitCode == 0, destroy.Output);
        Assert.Empty(await b.Client.ListVmsAsync());
    }

    [Fact]
    public async Task A_refused_migration_fails_the_apply_and_leaves_the_vm_and_the_state_on_the_old_host()
    {
        using var a = await AgentProcess.StartAsync(terraform.RepoRoot);
        using var b = await AgentProcess.StartAsync(terraform.RepoRoot, a.Token);
        const string Enabled = "migration = { enabled = true }";
        var dir = terraform.NewWorkDirectory(Config(a, b, "a", Enabled));
        terraform.Init(dir);
        var apply = Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
        var onA = Assert.Single(await a.Client.ListVmsAsync());
        // Host b has another VM with the same vm_id: the target refuses, and nothing may point at that VM afterwards.
        await b.Client.CreateVmAsync(new Kvm.Model.VmSpec { VmId = onA.VmId, Name = "someone-else", PowerState = "stopped", Memory = new Kvm.Model.MemorySpec { SizeMib = 64 } });

        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(a, b, "b", Enabled));
        var failed = Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("taken", failed.Output, StringComparison.Ordinal);
        var stillOnA = (await a.Client.GetVmAsync(onA.VmId!.Value)).Value;
        Assert.Equal("running", stillOnA.Status);
        Assert.Equal(onA.Pid, stillOnA.Pid);
        Assert.Equal("someone-else", (await b.Client.GetVmAsync(onA.VmId!.Value)).Value.Name);
        // The state still says host a: the next plan proposes the same migration again.
        var plan = Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 2, plan.Output);
        Assert.Contains("VM will be migrated from \"a\" to \"b\"", plan.Output, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(a, b, "a", Enabled));
        var destroy = Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
        Assert.True(destroy.ExitCode == 0, destroy.Output);
        Assert.Empty(await a.Client.ListVmsAsync());
        Assert.Single(await b.Client.ListVmsAsync()); // the other VM is untouched
        await b.Client.DeleteVmAsync(onA.VmId!.Value);
    }
}
