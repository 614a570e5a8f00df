using Kvm.Client;
using Kvm.Model;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// The examples in examples/terraform are documentation: each is applied as written by the real
/// terraform against a real agent (only their variables are set), then planned empty and destroyed.
/// Examples with VM networking run in <see cref="NetworkExampleTests"/>, inside a network namespace.
/// </summary>
[Collection(TerraformCollection.Name)]
public class ExampleTests(TerraformFixture terraform)
{
    private TerraformWorkspace Example(string scenario, AgentProcess agent) =>
        new(terraform, File.ReadAllText(Path.Combine(terraform.RepoRoot, "examples", "terraform", scenario, "main.tf")),
            new Dictionary<string, string> { ["KVM_ENDPOINT"] = agent.Endpoint, ["KVM_TOKEN"] = agent.Token });

    [Fact]
    public async Task The_host_facts_example_reads_the_host_and_a_vm()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var web = (await agent.Client.CreateVmAsync(new VmSpec
        {
            Name = "web-01",
            Memory = new MemorySpec { SizeMib = 64 },
            PowerState = "stopped",
        })).Value;
        var tf = Example("host-facts", agent);
        tf.Apply();
        var outputs = tf.Outputs();
        Assert.Equal((await agent.Client.GetHostAsync()).QemuVersion, (string)outputs["qemu"]!["value"]!);
        Assert.Equal("stopped", (string)outputs["web_status"]!["value"]!);
        tf.AssertEmptyPlan();

        await agent.Client.StartVmAsync(web.VmId!.Value);
        tf.Apply();
        Assert.Equal("running", (string)tf.Outputs()["web_status"]!["value"]!);
        tf.Destroy();
        // Data sources own nothing: the VM stays.
        Assert.NotNull(await agent.Client.FindVmAsync(web.VmId!.Value));
    }

    [Fact]
    public async Task The_storage_pool_example_makes_a_pool_and_a_raw_volume_in_it()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        var parent = Directory.CreateTempSubdirectory("kvm-tf-example-").FullName;
        try
        {
            var poolPath = Path.Combine(parent, "nvme", "kvm");
            var tf = Example("storage-pool", agent).Var("pool_path", poolPath);
            tf.Apply();
            var pool = (await agent.Client.GetStoragePoolAsync("fast")).Value;
            Assert.Equal(poolPath, pool.Path);
            var scratch = (await agent.Client.GetVolumeAsync("fast", "scratch.raw")).Value;
            Assert.Equal("raw", scratch.Format);
            Assert.Equal(4L << 30, scratch.CapacityBytes);
            Assert.Equal(Path.Combine(poolPath, "scratch.raw"), (string)tf.Outputs()["scratch_path"]!["value"]!);
            Assert.Equal(4L << 30, new FileInfo(Path.Combine(poolPath, "scratch.raw")).Length);
            tf.AssertEmptyPlan();
            tf.Destroy();
            Assert.Equal(["default"], (await agent.Client.ListStoragePoolsAsync()).Select(p => p.Name));
            Assert.Empty(HostFiles.Files(poolPath));
            Assert.Equal(before, HostFiles.Files(data));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public async Task The_multi_disk_example_starts_a_vm_with_inline_disks_and_a_volume()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var data = await HostFiles.DataDirectoryAsync(agent);
        var before = HostFiles.Files(data);
        var tf = Example("multi-disk", agent);
        tf.Apply();

        var vm = Assert.Single(await agent.Client.ListVmsAsync());
        Assert.Equal("db-01", vm.Name);
        Assert.Equal("running", vm.Status);
        Assert.Equal(["sata0", "scsi0", "scsi1"], vm.Disks!.Keys.Order(StringComparer.Ordinal));
        var volume = (await agent.Client.GetVolumeAsync("default", "db-data.qcow2")).Value;
        Assert.Equal(10L << 30, volume.CapacityBytes);
        Assert.Equal([$"{vm.VmId}/scsi1"], volume.AttachedTo!);
        Assert.Equal("default/db-data.qcow2", (string)tf.Outputs()["data_volume"]!["value"]!);
        // The QEMU process has every disk: the inline ones and the volume's file.
        var cmdline = File.ReadAllText($"/proc/{vm.Pid}/cmdline").Replace('\0', ' ');
        Assert.Contains(volume.Path!, cmdline, StringComparison.Ordinal);
        Assert.Contains("serial=scratch", cmdline, StringComparison.Ordinal);
        tf.AssertEmptyPlan();

        // The guest (no OS) ignores ACPI power-off; stop it as an admin would rather than waiting the
        // example's 120 s graceful timeout. Destroy then removes a stopped VM.
        await agent.Client.StopVmAsync(vm.VmId!.Value);
        tf.Destroy();
        Assert.Empty(await agent.Client.ListVmsAsync());
        Assert.Empty(await agent.Client.ListVolumesAsync());
        Assert.Equal(before, HostFiles.Files(data));
    }
}
