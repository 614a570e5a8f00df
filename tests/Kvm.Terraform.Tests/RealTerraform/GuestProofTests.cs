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
    private static string Header(AgentProcess agent) => $$"""
        terraform {
          required_providers {
            kvm = { source = "kvm/kvm" }
          }
        }

        provider "kvm" {
          endpoint = "{{agent.Endpoint}}"
          token    = "{{agent.Token}}"
        }

        resource "kvm_network" "lab" {
          name    = "kvmproof0"
          address = "192.168.61.1/24"
          dhcp    = { range_start = "192.168.61.100", range_end = "192.168.61.150" }
          dns     = { domain = "lab.test" }
        }

        """;

    private static string Guest(DebianGuestFiles debian, string imageUrl, string sha256, string sshKey, string marker) => $$"""
        resource "kvm_image" "debian" {
          name     = "debian-proof.qcow2"
          url      = "{{imageUrl}}"
          checksum = "{{sha256}}"
        }

        resource "kvm_vm" "guest" {
          name    = "proof-guest"
          cpu     = { cores = 2 }
          memory  = { size_mib = 1024 }
          kernel  = "{{debian.Kernel}}"
          initrd  = "{{debian.Initrd}}"
          cmdline = "{{debian.Cmdline}}"
          disks = {
            virtio0 = { image_id = kvm_image.debian.image_id, linked_clone = true }
          }
          network_interfaces = {
            net0 = { bridge = kvm_network.lab.name }
          }
          agent = { enabled = true }
          cloud_init = {
            hostname  = "tf-proof"
            user      = { name = "lab", ssh_keys = ["{{sshKey}}"] }
            user_data = "#cloud-config\nwrite_files:\n  - path: /etc/kvm-proof\n    content: {{marker}}\n"
            on_change = "reprovision"
          }
          wait_for_ip = { timeout_seconds = 1200 }
          update_policy = { shutdown_timeout_seconds = 60 }
        }

        output "ip" {
          value = kvm_vm.guest.primary_ipv4
        }
        """;

    private CommandResult Run(string dir, params string[] args)
    {
        var result = terraform.Run(dir, args);
        output.WriteLine($"$ terraform {string.Join(' ', args)} → {result.ExitCode}");
        return result;
    }

    private void Apply(string dir)
    {
        var apply = Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
        Assert.True(apply.ExitCode == 0, apply.Output);
    }

    private void AssertEmptyPlan(string dir)
    {
        var plan = Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 0, "expected no changes:\n" + plan.Output);
    }

    [Fact]
    public async Task A_debian_guest_comes_up_ready_with_its_dhcp_address_and_cloud_init_and_is_reprovisioned_in_place()
    {
        var debian = DebianGuestFiles.Find(terraform.RepoRoot);
        string netns;
        using (var agent = await AgentProcess.StartInNamespaceAsync(terraform.RepoRoot))
        {
            netns = agent.Netns!;
            var sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(File.OpenRead(debian.Disk)));
            var sshKey = GuestChecks.Ed25519PublicKey();
            var guest = new GuestAgents(new AgentOptions { RunDir = agent.RunDirectory });
            using var files = await NamespaceFileServer.StartAsync(netns, debian.Directory);
            var url = files.UrlOf("disk.qcow2");

            var dir = terraform.NewWorkDirectory(Header(agent) + Guest(debian, url, sha256, sshKey, "one"));
            terraform.Init(dir);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Apply(dir);
            output.WriteLine($"apply with wait_for_ip: {clock.Elapsed.TotalSeconds:0} s");

            // The apply returned the address the network's DHCP handed out.
            var ip = JsonNode.Parse(Run(dir, "output", "-json").Stdout)!["ip"]!["value"]!.GetValue<string>();
            output.WriteLine($"primary_ipv4 = {ip}");
            var last = IPAddress.Parse(ip).GetAddressBytes();
            Assert.Equal([192, 168, 61], last[..3]);
            Assert.InRange(last[3], 100, 150);
            var vm = (await agent.Client.ListVmsAsync()).Single();
            var vmId = vm.VmId!.Value;
            var leases = await File.ReadAllTextAsync((await agent.Client.GetNetworkAsync("kvmproof0")).Value.LeaseFile!);
            Assert.Contains(vm.MacAddresses!["net0"], leases, StringComparison.OrdinalIgnoreCase);
            Assert.Contains(ip, leases, StringComparison.Ordinal);

            // The guest agent confirms what cloud-init did: host name, the user's authorized key, user_data's file.
            var status = await GuestChecks.ExecUntilAsync(guest, vmId, TimeSpan.FromMinutes(15), r => r.ExitCode is 0 or 2, "/usr/bin/cloud-init", "status", "--wait", "--long");
            output.WriteLine(status.StdOut);
            var info = JsonNode.Parse(await agent.Client.Http.GetStringAsync($"v1/vms/{vmId}/agent"))!;
            Assert.Equal("tf-proof", info["hostname"]!.GetValue<string>());
            var keys = await guest.ExecAsync(vmId, "/bin/cat", ["/home/lab/.ssh/authorized_keys"], TimeSpan.FromSeconds(60));
            Assert.Contains(sshKey, keys.StdOut, StringComparison.Ordinal);
            Assert.Equal("one", (await guest.ExecAsync(vmId, "/bin/cat", ["/etc/kvm-proof"], TimeSpan.FromSeconds(60))).StdOut.Trim());
            AssertEmptyPlan(dir);

            // A user_data change is an in-place update: the seed is swapped, the guest re-provisioned, QEMU never restarted.
            var before = (await agent.Client.GetVmAsync(vmId)).Value;
            File.WriteAllText(Path.Combine(dir, "main.tf"), Header(agent) + Guest(debian, url, sha256, sshKey, "two"));
            var plan = Run(dir, "plan", "-input=false", "-no-color");
            Assert.Contains("1 to change, 0 to destroy", plan.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("must be replaced", plan.Stdout, StringComparison.Ordinal);
            Assert.Contains("(sensitive value)", plan.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("kvm-proof", plan.Stdout, StringComparison.Ordinal);
            Apply(dir);
            var after = (await agent.Client.GetVmAsync(vmId)).Value;
            Assert.Equal(before.Pid, after.Pid);
            Assert.NotEqual(before.CloudInitInstanceId, after.CloudInitInstanceId);
            var reprovisioned = await GuestChecks.ExecUntilAsync(guest, vmId, TimeSpan.FromMinutes(15), r => r.StdOut.Trim() == "two", "/bin/cat", "/etc/kvm-proof");
            Assert.Equal("two", reprovisioned.StdOut.Trim());
            AssertEmptyPlan(dir);

            // Destroy: no QEMU, no dnsmasq, no tap or bridge, no seed, no disk, no image.
            var destroy = Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
            Assert.True(destroy.ExitCode == 0, destroy.Output);
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
