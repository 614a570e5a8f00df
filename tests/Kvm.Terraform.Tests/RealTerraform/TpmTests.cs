using System.Globalization;
using System.Text.Json.Nodes;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>A TPM through the real terraform: added in place (a restart, never a replacement), stable, removed in place.</summary>
[Collection(TerraformCollection.Name)]
public class TpmTests(TerraformFixture terraform)
{
    private string Config(AgentProcess agent, string tpm)
    {
        var kernel = Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "vmlinuz");
        var initrd = Environment.GetEnvironmentVariable("KVM_TEST_INITRD") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "initrd.img");
        return TerraformWorkspace.Header(agent) + $$"""
            resource "kvm_vm" "t" {
              name    = "tf-tpm"
              kernel  = "{{kernel}}"
              initrd  = "{{initrd}}"
              cmdline = "console=ttyS0"
              memory  = { size_mib = 128 }
              update_policy = { shutdown_timeout_seconds = 3 }
              {{tpm}}
            }
            """;
    }

    private CommandResult Run(string dir, int expectedExit, params string[] args)
    {
        var result = terraform.Run(dir, args);
        Assert.True(result.ExitCode == expectedExit, $"terraform {string.Join(' ', args)} exited {result.ExitCode}:\n{result.Output}");
        return result;
    }

    private void Apply(string dir) => Run(dir, 0, "apply", "-auto-approve", "-input=false", "-no-color");

    private CommandResult Plan(string dir, int expectedExit) => Run(dir, expectedExit, "plan", "-input=false", "-no-color", "-detailed-exitcode");

    private JsonNode State(string dir) =>
        JsonNode.Parse(Run(dir, 0, "show", "-json", "-no-color").Stdout)!["values"]!["root_module"]!["resources"]!.AsArray()
            .Single(r => (string)r!["address"]! == "kvm_vm.t")!["values"]!;

    [Fact]
    public async Task A_tpm_is_added_and_removed_in_place()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var dir = terraform.NewWorkDirectory(Config(agent, ""));
        terraform.Init(dir);
        Apply(dir);
        var vmId = (long)State(dir)["vm_id"]!;
        var stateDir = Path.Combine(agent.DataDirectory, "tpm", vmId.ToString(CultureInfo.InvariantCulture));
        var pidFile = Path.Combine(agent.RunDirectory, vmId.ToString(CultureInfo.InvariantCulture), "swtpm.pid");
        var pid = (long)State(dir)["pid"]!;
        Assert.False(Directory.Exists(stateDir));

        // Add: an in-place update that needs a restart, which the apply does (update_policy auto).
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, "tpm = { version = \"v2.0\" }"));
        var add = Plan(dir, 2);
        Assert.Contains("updated in-place", add.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("must be replaced", add.Stdout, StringComparison.Ordinal);
        Apply(dir);
        var withTpm = State(dir);
        Assert.Equal(vmId, (long)withTpm["vm_id"]!);
        Assert.NotEqual(pid, (long)withTpm["pid"]!);
        Assert.Equal("v2.0", (string)withTpm["tpm"]!["version"]!);
        Assert.True(File.Exists(Path.Combine(stateDir, "tpm2-00.permall")));
        var swtpm = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
        Assert.Contains("swtpm", File.ReadAllText($"/proc/{swtpm}/cmdline"), StringComparison.Ordinal);
        Plan(dir, 0);

        // A version change alone would silently replace the TPM: the plan refuses it and names the reset knob.
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, "tpm = { version = \"v1.2\" }"));
        var refused = Plan(dir, 1);
        Assert.Contains("state_generation", refused.Output, StringComparison.Ordinal);

        // Remove: in place again; after the restart neither swtpm nor its state remains.
        File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, ""));
        var remove = Plan(dir, 2);
        Assert.Contains("updated in-place", remove.Stdout, StringComparison.Ordinal);
        Apply(dir);
        Assert.Null(State(dir)["tpm"]);
        Assert.False(Directory.Exists($"/proc/{swtpm}") && File.ReadAllText($"/proc/{swtpm}/cmdline").Contains("swtpm", StringComparison.Ordinal));
        Assert.False(Directory.Exists(stateDir));
        Plan(dir, 0);

        Run(dir, 0, "destroy", "-auto-approve", "-input=false", "-no-color");
        await HostLeftovers.AssertNothingLeftAsync(agent);
    }
}
