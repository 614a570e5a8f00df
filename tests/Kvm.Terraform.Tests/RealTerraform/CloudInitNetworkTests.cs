using System.Text.Json.Nodes;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// Real terraform against a real agent inside its own network namespace: a kvm_network with DHCP, DNS and NAT served by
/// the agent's dnsmasq, and a running kvm_vm with cloud-init on it. A user_data change plans as an in-place update that
/// shows only "(sensitive value)", applies without replacing (same QEMU), and leaves an empty plan; import plans an
/// in-place update at most; destroy leaves no process, seed or lease file.
/// </summary>
[Collection(TerraformCollection.Name)]
public class CloudInitNetworkTests(TerraformFixture terraform)
{
    private string Config(AgentProcess agent, string userData) => TerraformWorkspace.Header(agent) + $$"""
        resource "kvm_network" "lab" {
          name    = "kvmcibr0"
          address = "192.168.88.1/24"
          dhcp = {
            range_start   = "192.168.88.100"
            range_end     = "192.168.88.120"
            static_leases = { "bc:24:11:88:00:10" = { ip = "192.168.88.10", hostname = "web" } }
          }
          dns = { domain = "lab.test" }
          nat = true
        }

        resource "kvm_vm" "web" {
          name    = "web"
          kernel  = "{{Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "vmlinuz")}}"
          initrd  = "{{Environment.GetEnvironmentVariable("KVM_TEST_INITRD") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "initrd.img")}}"
          cmdline = "console=ttyS0"
          memory  = { size_mib = 128 }
          update_policy = { shutdown_timeout_seconds = 3 }
          network_interfaces = {
            net0 = { bridge = kvm_network.lab.name, mac = "bc:24:11:88:00:10" }
          }
          cloud_init = {
            hostname  = "web"
            user      = { name = "ops", password = "correct horse", ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKvm test@kvm"] }
            ip_config = { net0 = { ipv4 = { address = "dhcp" } } }
            user_data = "{{userData}}"
          }
        }
        """;

    private CommandResult Plan(string dir, int expectedExit)
    {
        var plan = terraform.Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == expectedExit, $"expected plan exit {expectedExit}:\n{plan.Output}");
        return plan;
    }

    private void Apply(string dir)
    {
        var apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
    }

    private JsonNode State(string dir, string address)
    {
        var show = terraform.Run(dir, "show", "-json", "-no-color");
        Assert.True(show.ExitCode == 0, show.Output);
        return JsonNode.Parse(show.Stdout)!["values"]!["root_module"]!["resources"]!.AsArray().Single(r => (string)r!["address"]! == address)!["values"]!;
    }

    [Fact]
    public async Task A_cloud_init_change_updates_in_place_with_secrets_hidden_on_a_dhcp_network()
    {
        string netns;
        string data;
        using (var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot))
        {
            netns = agent.Netns!;
            data = agent.DataDirectory;
            var dir = terraform.NewWorkDirectory(Config(agent, "#cloud-config\\nruncmd: [echo one]\\n"));
            terraform.Init(dir);
            Apply(dir);

            var network = State(dir, "kvm_network.lab");
            var dnsmasq = (int)(long)network["dnsmasq_pid"]!;
            Assert.Contains(dnsmasq, agent.NamespacePids());
            var vm = State(dir, "kvm_vm.web");
            Assert.Equal("running", (string)vm["status"]!);
            var pid = (long)vm["pid"]!;
            var instanceId = (string)vm["cloud_init_instance_id"]!;
            // State holds what the user wrote (the agent only ever answered fingerprints).
            Assert.Equal("correct horse", (string)vm["cloud_init"]!["user"]!["password"]!);
            Plan(dir, 0);

            var agentView = (await agent.Client.GetVmAsync((long)vm["vm_id"]!)).Value;
            Assert.StartsWith("sha256:", agentView.CloudInit!.UserData, StringComparison.Ordinal);
            Assert.StartsWith("sha256:", agentView.CloudInit.User!.Password, StringComparison.Ordinal);

            File.WriteAllText(Path.Combine(dir, "main.tf"), Config(agent, "#cloud-config\\nruncmd: [echo two]\\n"));
            var changed = Plan(dir, 2);
            Assert.Contains("updated in-place", changed.Stdout, StringComparison.Ordinal);
            Assert.Contains("user_data", changed.Stdout, StringComparison.Ordinal);
            Assert.Contains("(sensitive value)", changed.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("echo two", changed.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("must be replaced", changed.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("restart", changed.Output, StringComparison.OrdinalIgnoreCase);
            Apply(dir);
            vm = State(dir, "kvm_vm.web");
            Assert.Equal(pid, (long)vm["pid"]!);
            Assert.Equal(instanceId, (string)vm["cloud_init_instance_id"]!);
            Plan(dir, 0);

            // Import: the agent knows only fingerprints, so the secrets are written once more, in place.
            Assert.Equal(0, terraform.Run(dir, "state", "rm", "kvm_vm.web").ExitCode);
            var import = terraform.Run(dir, "import", "-input=false", "-no-color", "kvm_vm.web", ((long)vm["vm_id"]!).ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(import.ExitCode == 0, import.Output);
            var afterImport = Plan(dir, 2);
            Assert.Contains("0 to add, 1 to change, 0 to destroy", afterImport.Stdout, StringComparison.Ordinal);
            Apply(dir);
            Assert.Equal(pid, (long)State(dir, "kvm_vm.web")["pid"]!);
            Plan(dir, 0);

            var destroy = terraform.Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
            Assert.True(destroy.ExitCode == 0, destroy.Output);
            Assert.DoesNotContain(dnsmasq, agent.NamespacePids());
            Assert.DoesNotContain((int)pid, agent.NamespacePids());
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(data, "cloud-init")));
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(data, "networks")));
        }
        Assert.DoesNotContain(netns, AgentProcess.Ip("netns", "list"), StringComparison.Ordinal);
    }
}
