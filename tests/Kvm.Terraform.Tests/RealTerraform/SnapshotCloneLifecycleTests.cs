using System.Diagnostics;
using Kvm.Client;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// kvm_snapshot, and templates with linked and full clones, through the real terraform, the built provider, a real kvm-agent and
/// real QEMU (TCG): apply, empty plan, in-place description change, replacement, import both ways, destroy, and the host
/// checked afterwards through the agent API, qemu-img and its data directory.
/// </summary>
[Collection(TerraformCollection.Name)]
public class SnapshotCloneLifecycleTests(TerraformFixture terraform)
{
    private static string QemuImgSnapshots(string image)
    {
        using var process = Process.Start(new ProcessStartInfo("qemu-img", ["snapshot", "-U", "-l", "--image-opts", "driver=qcow2,file.driver=file,file.filename=" + image])
        {
            RedirectStandardOutput = true,
        })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output;
    }

    private static string QemuImgInfo(string image)
    {
        using var process = Process.Start(new ProcessStartInfo("qemu-img", ["info", "-U", "--output=json", "-f", "qcow2", image]) { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output;
    }

    [Fact]
    public async Task Snapshots_of_a_running_vm_go_through_their_whole_lifecycle()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        string Config(string description, string memoryName) => TerraformWorkspace.Header(agent) + $$"""
            resource "kvm_vm" "v" {
              name    = "tf-snap"
              memory  = { size_mib = 128 }
              display = { vga = "none", vnc = false }
              disks   = { scsi0 = { size_gib = 1 } }
              update_policy = { shutdown_timeout_seconds = 3 }
            }

            resource "kvm_snapshot" "s" {
              vm_id       = kvm_vm.v.vm_id
              name        = "first"
              description = "{{description}}"
            }

            resource "kvm_snapshot" "m" {
              vm_id          = kvm_vm.v.vm_id
              name           = "{{memoryName}}"
              include_memory = true
              depends_on     = [kvm_snapshot.s]
            }
            """;
        var body = Config("one", "mem");
        var tf = new TerraformWorkspace(terraform, body);

        tf.Apply();
        var vmId = (long)tf.State("kvm_vm.v")["vm_id"]!;
        var image = Path.Combine(data, "pools", "default", $"vm-{vmId}-disk-scsi0.qcow2");
        var first = tf.State("kvm_snapshot.s");
        Assert.Equal($"{vmId}/first", (string)first["snapshot_id"]!);
        Assert.Equal($"{vmId}/first", (string)first["id"]!);
        Assert.Equal("running", (string)first["vm_status"]!);
        Assert.Null(first["include_memory"]); // unset stays unset
        var memory = tf.State("kvm_snapshot.m");
        Assert.Equal("first", (string)memory["parent"]!);
        Assert.True((long)memory["vm_state_bytes"]! > 0);
        var listed = QemuImgSnapshots(image);
        Assert.Contains("first", listed, StringComparison.Ordinal);
        Assert.Contains("mem", listed, StringComparison.Ordinal);
        tf.AssertEmptyPlan();

        // The description changes in place; a new name replaces the snapshot.
        tf.Write(Config("two", "mem"));
        Assert.Contains("1 to change, 0 to destroy", tf.PlanWithChanges(), StringComparison.Ordinal);
        tf.Apply();
        Assert.Equal("two", (await agent.Client.GetSnapshotAsync(vmId, "first")).Value.Description);
        tf.AssertEmptyPlan();
        body = Config("two", "mem2");
        tf.Write(body);
        Assert.Contains("kvm_snapshot.m must be replaced", tf.PlanWithChanges(), StringComparison.Ordinal);
        tf.Apply();
        listed = QemuImgSnapshots(image);
        Assert.Contains("mem2", listed, StringComparison.Ordinal);
        Assert.DoesNotContain("mem ", listed, StringComparison.Ordinal);
        Assert.Equal(["first", "mem2"], (await agent.Client.ListSnapshotsAsync(vmId)).Select(s => s.Name));
        tf.AssertEmptyPlan();

        tf.RoundTripImport(body, "kvm_snapshot.s", $"{vmId}/first");

        // Deleted behind terraform's back: refresh drops it, apply takes it again.
        await agent.Client.DeleteSnapshotAsync(vmId, "first");
        Assert.Contains("1 to add", tf.PlanWithChanges(), StringComparison.Ordinal);
        tf.Apply();
        Assert.Contains("first", QemuImgSnapshots(image), StringComparison.Ordinal);
        tf.AssertEmptyPlan();

        tf.Destroy();
        Assert.Empty(await agent.Client.ListVmsAsync());
        Assert.Equal(before, HostFiles.Files(data));
    }

    [Fact]
    public async Task A_template_with_two_linked_clones_and_a_full_clone_applies_plans_empty_and_destroys_in_order()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        var body = TerraformWorkspace.Header(agent) + """
            resource "kvm_vm" "tpl" {
              name     = "tf-tpl"
              template = true
              memory   = { size_mib = 64 }
              display  = { vga = "none", vnc = false }
              disks    = { scsi0 = { size_gib = 1 } }
            }

            resource "kvm_vm" "linked" {
              for_each = toset(["a", "b"])
              name     = "tf-linked-${each.key}"
              memory   = { size_mib = 96 }
              display  = { vga = "none", vnc = false }
              disks    = { scsi0 = { size_gib = 1 } }
              clone    = { source_vm_id = kvm_vm.tpl.vm_id }
              update_policy = { shutdown_timeout_seconds = 3 }
            }

            resource "kvm_vm" "full" {
              name        = "tf-full"
              power_state = "stopped"
              memory      = { size_mib = 64 }
              disks       = { scsi0 = { size_gib = 2 } }
              clone       = { source_vm_id = kvm_vm.tpl.vm_id, linked = false }
            }
            """;
        var tf = new TerraformWorkspace(terraform, body);

        tf.Apply();
        var tid = (long)tf.State("kvm_vm.tpl")["vm_id"]!;
        string Disk(long id) => Path.Combine(data, "pools", "default", $"vm-{id}-disk-scsi0.qcow2");
        Assert.Equal("stopped", (string)tf.State("kvm_vm.tpl")["status"]!);
        foreach (var key in new[] { "a", "b" })
        {
            var clone = tf.State($"kvm_vm.linked[\"{key}\"]");
            Assert.Equal("running", (string)clone["status"]!);
            Assert.Equal(96, (long)clone["memory"]!["size_mib"]!);
            Assert.Contains(Disk(tid), QemuImgInfo(Disk((long)clone["vm_id"]!)), StringComparison.Ordinal);
        }
        var fullId = (long)tf.State("kvm_vm.full")["vm_id"]!;
        Assert.DoesNotContain("backing-filename", QemuImgInfo(Disk(fullId)), StringComparison.Ordinal);
        tf.AssertEmptyPlan();

        // The agent refuses to delete the template while its linked clones exist.
        var refused = await Assert.ThrowsAsync<KvmApiException>(() => agent.Client.DeleteVmAsync(tid));
        Assert.Contains("linked clones", refused.Detail, StringComparison.Ordinal);

        tf.RoundTripImport(body, "kvm_vm.full", fullId.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // Destroy: the clones go before the template they reference.
        tf.Destroy();
        Assert.Empty(await agent.Client.ListVmsAsync());
        Assert.Equal(before, HostFiles.Files(data));
    }
    [Fact]
    public async Task The_snapshots_example_clones_a_template_twice_and_snapshots_each_clone_with_memory()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        var tf = new TerraformWorkspace(terraform, File.ReadAllText(Path.Combine(terraform.RepoRoot, "examples", "terraform", "snapshots", "main.tf")),
            new Dictionary<string, string> { ["KVM_ENDPOINT"] = agent.Endpoint, ["KVM_TOKEN"] = agent.Token });
        tf.Apply();
        var ids = tf.Outputs()["snapshots"]!["value"]!.AsArray().Select(n => (string)n!).ToList();
        Assert.Equal(2, ids.Count);
        foreach (var id in ids)
        {
            var vmId = long.Parse(id.Split('/')[0], System.Globalization.CultureInfo.InvariantCulture);
            var snapshot = (await agent.Client.GetSnapshotAsync(vmId, "before-upgrade")).Value;
            Assert.True(snapshot.IncludeMemory);
            Assert.True(snapshot.VmStateBytes > 0);
            Assert.Equal("running", (await agent.Client.GetVmAsync(vmId)).Value.Status);
        }
        tf.AssertEmptyPlan();
        tf.Destroy();
        Assert.Empty(await agent.Client.ListVmsAsync());
        Assert.Equal(before, HostFiles.Files(data));
    }
}
