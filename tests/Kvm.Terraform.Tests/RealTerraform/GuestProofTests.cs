using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kvm.Agent;
using Kvm.Agent.GuestAgent;
using Kvm.Tests.Shared;
using Xunit.Abstractions;

namespace Kvm.Terraform.Tests.RealTerraform;


/// <summary>
/// Issue 5's proof on a real Linux guest, all through the real terraform: inside a network namespace of the test's own,
/// a DHCP network, a Debian image imported from a loopback URL, and a VM with cloud-init and wait_for_ip. The apply
/// returns the address DHCP gave; the guest agent confirms what cloud-init did; a user_data change is an in-place update
/// that re-provisions the running guest; destroy leaves nothing behind. Guests run under TCG: minutes, not seconds.
/// </summary>
[Collection(TerraformCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class GuestProofTests(TerraformFixture terraform, ITestOutputHelper output)
{
    private static string Header(AgentProcess agent) => TerraformWorkspace.Header(agent) + $$"""
        resource "kvm_network" "lab" {
          name    = "kvmproof0"
          address = "192.168.61.1/24"
          dhcp    = { range_start = "192.168.61.100", range_end = "192.168.61.150" }
          dns     = { domain = "lab.test" }
        }

        """;

    private IReadOnlyDictionary<string, string>? _environment;

    private CommandResult Run(string dir, params string[] args)
    {
        var result = terraform.Run(dir, _environment, args);
        output.WriteLine($"$ terraform {string.Join(' ', args)} → {result.ExitCode}");
        return result;
    }

    [Fact]
    public async Task The_cloud_init_example_brings_a_debian_guest_up_ready_and_reprovisions_it_in_place()
    {
        var debian = DebianGuestFiles.Find(terraform.RepoRoot);
        string netns;
        using (var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot))
        {
            netns = agent.Netns!;
            _environment = new Dictionary<string, string> { ["KVM_ENDPOINT"] = agent.Endpoint, ["KVM_TOKEN"] = agent.Token };
            var sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(File.OpenRead(debian.Disk)));
            var sshKey = GuestChecks.Ed25519PublicKey();
            var guest = new GuestAgents(new AgentOptions { RunDir = agent.RunDirectory });
            using var files = await NamespaceFileServer.StartAsync(netns, debian.Directory);
            // The example as users read it; the test only points it at the Debian test guest (no boot loader: direct kernel boot)
            // served on the namespace's loopback, and at a user_data it can check.
            string[] Vars(string marker) =>
            [
                "-var", $"ssh_public_key={sshKey}", "-var", $"image_url={files.UrlOf("disk.qcow2")}", "-var", $"image_sha256={sha256}",
                "-var", $"kernel={debian.Kernel}", "-var", $"initrd={debian.Initrd}", "-var", $"cmdline={debian.Cmdline}",
                "-var", $"user_data=#cloud-config\nwrite_files:\n  - path: /etc/kvm-proof\n    content: {marker}\n",
            ];
            var dir = terraform.NewWorkDirectory(File.ReadAllText(Path.Combine(terraform.RepoRoot, "examples", "terraform", "cloud-init", "main.tf")));
            terraform.Init(dir);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var apply = Run(dir, ["apply", "-auto-approve", "-input=false", "-no-color", .. Vars("one")]);
            Assert.True(apply.ExitCode == 0, apply.Output);
            output.WriteLine($"apply with wait_for_ip: {clock.Elapsed.TotalSeconds:0} s");

            // The apply returned the address the network's DHCP handed out.
            var ip = JsonNode.Parse(Run(dir, "output", "-json").Stdout)!["ipv4"]!["value"]!.GetValue<string>();
            output.WriteLine($"primary_ipv4 = {ip}");
            var bytes = IPAddress.Parse(ip).GetAddressBytes();
            Assert.Equal([192, 168, 60], bytes[..3]);
            Assert.InRange(bytes[3], 100, 199);
            var vm = (await agent.Client.ListVmsAsync()).Single();
            var vmId = vm.VmId!.Value;
            var leases = await File.ReadAllTextAsync((await agent.Client.GetNetworkAsync("kvmci0")).Value.LeaseFile!);
            Assert.Contains(vm.MacAddresses!["net0"], leases, StringComparison.OrdinalIgnoreCase);
            Assert.Contains(ip, leases, StringComparison.Ordinal);

            // The guest agent confirms what cloud-init did: host name, the user's authorized key, user_data's file.
            var status = await GuestChecks.WaitForCloudInitAsync(guest, vmId, TimeSpan.FromMinutes(15));
            output.WriteLine(status);
            if (!status.Contains("status: done", StringComparison.Ordinal))
            {
                // Why cloud-init did not finish cleanly: what ds-identify saw, and the block devices the guest has.
                foreach (var probe in new[] { "cat /run/cloud-init/ds-identify.log", "blkid", "lsmod" })
                    output.WriteLine($"# {probe}\n{(await guest.ExecAsync(vmId, "/bin/sh", ["-c", probe + " 2>&1"], TimeSpan.FromSeconds(60))).StdOut}");
            }
            var info = JsonNode.Parse(await agent.Client.Http.GetStringAsync($"v1/vms/{vmId}/agent"))!;
            Assert.Equal("web-01", info["hostname"]!.GetValue<string>());
            var keys = await guest.ExecAsync(vmId, "/bin/cat", ["/home/debian/.ssh/authorized_keys"], TimeSpan.FromSeconds(60));
            Assert.Contains(sshKey, keys.StdOut, StringComparison.Ordinal);
            Assert.Equal("one", (await guest.ExecAsync(vmId, "/bin/cat", ["/etc/kvm-proof"], TimeSpan.FromSeconds(60))).StdOut.Trim());
            var plan = Run(dir, ["plan", "-input=false", "-no-color", "-detailed-exitcode", .. Vars("one")]);
            Assert.True(plan.ExitCode == 0, "expected no changes:\n" + plan.Output);

            // A user_data change is an in-place update: the seed is swapped, the guest re-provisioned, QEMU never restarted.
            var before = (await agent.Client.GetVmAsync(vmId)).Value;
            plan = Run(dir, ["plan", "-input=false", "-no-color", .. Vars("two")]);
            Assert.Contains("1 to change, 0 to destroy", plan.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("must be replaced", plan.Stdout, StringComparison.Ordinal);
            Assert.Contains("(sensitive value)", plan.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("kvm-proof", plan.Stdout, StringComparison.Ordinal);
            apply = Run(dir, ["apply", "-auto-approve", "-input=false", "-no-color", .. Vars("two")]);
            Assert.True(apply.ExitCode == 0, apply.Output);
            var after = (await agent.Client.GetVmAsync(vmId)).Value;
            Assert.Equal(before.Pid, after.Pid);
            Assert.NotEqual(before.CloudInitInstanceId, after.CloudInitInstanceId);
            var reprovisioned = await GuestChecks.ExecUntilAsync(guest, vmId, TimeSpan.FromMinutes(15), r => r.StdOut.Trim() == "two", "/bin/cat", "/etc/kvm-proof");
            Assert.Equal("two", reprovisioned.StdOut.Trim());
            plan = Run(dir, ["plan", "-input=false", "-no-color", "-detailed-exitcode", .. Vars("two")]);
            Assert.True(plan.ExitCode == 0, "expected no changes:\n" + plan.Output);

            // Destroy: no QEMU, no dnsmasq, no tap or bridge, no seed, no disk, no image.
            var destroy = Run(dir, ["destroy", "-auto-approve", "-input=false", "-no-color", .. Vars("two")]);
            Assert.True(destroy.ExitCode == 0, destroy.Output);
            // The same checks as the Pulumi proof's destroy: both leave the host in the same state.
            await HostLeftovers.AssertNothingLeftAsync(agent, files.Pid);
        }
        HostLeftovers.AssertNamespaceGone(netns);
    }

    [Fact]
    public async Task Wait_for_ip_on_a_guest_without_a_guest_agent_fails_the_apply_naming_the_sources_it_tried()
    {
        using var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot);
        var kernel = Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "vmlinuz");
        var initrd = Environment.GetEnvironmentVariable("KVM_TEST_INITRD") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "initrd.img");
        // The busybox test guest runs no guest agent and no DHCP client.
        var dir = terraform.NewWorkDirectory(Header(agent) + $$"""
            resource "kvm_vm" "quiet" {
              name    = "quiet-guest"
              kernel  = "{{kernel}}"
              initrd  = "{{initrd}}"
              cmdline = "console=ttyS0"
              memory  = { size_mib = 256 }
              network_interfaces = {
                net0 = { bridge = kvm_network.lab.name }
              }
              agent       = { enabled = true }
              wait_for_ip = { timeout_seconds = 10 }
              update_policy = { shutdown_timeout_seconds = 3 }
            }
            """);
        terraform.Init(dir);
        var apply = Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.Equal(1, apply.ExitCode);
        var text = string.Join(' ', apply.Output.Split((char[])['\n', '│'], StringSplitOptions.TrimEntries));
        output.WriteLine(text);
        Assert.Contains("no IPv4 address on net0 within 10 s", text, StringComparison.Ordinal);
        Assert.Contains("agent: unavailable", text, StringComparison.Ordinal);
        Assert.Contains("lease:", text, StringComparison.Ordinal);
        Assert.Contains("neighbor:", text, StringComparison.Ordinal);
        // The VM exists and is in the state (tainted), so destroy removes it.
        Assert.Contains("kvm_vm.quiet", Run(dir, "state", "list").Stdout, StringComparison.Ordinal);
        var destroy = Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
        Assert.True(destroy.ExitCode == 0, destroy.Output);
        Assert.Empty(await agent.Client.ListVmsAsync());
    }
}
