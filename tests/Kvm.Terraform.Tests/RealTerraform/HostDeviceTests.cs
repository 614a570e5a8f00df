using System.Diagnostics;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// Real terraform, real agent, real QEMU: a loop device the test attaches to a sparse file (detached in <c>finally</c>) as
/// <c>disks.scsi1.host_device</c>: applied, its size reported, an empty plan, destroyed with the device and its data intact;
/// a character device refused at apply with the attribute named.
/// </summary>
[Collection(TerraformCollection.Name)]
public class HostDeviceTests(TerraformFixture terraform)
{
    private const long Bytes = 32L << 20;
    private static readonly byte[] Marker = "KVM-TF-HOST-DEVICE"u8.ToArray();

    private static string Run(params string[] argv)
    {
        var info = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in argv.Skip(1))
            info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{string.Join(' ', argv)}: {stderr}");
        return stdout;
    }

    private static string Config(AgentProcess agent, string device) => TerraformWorkspace.Header(agent) + $$"""
        resource "kvm_vm" "d" {
          name    = "hostdev"
          memory  = { size_mib = 64 }
          display = { vga = "none", vnc = false }
          disks = {
            scsi1 = { host_device = "{{device}}", serial = "tfdata", read_only = true }
          }
        }
        """;

    [Fact]
    public async Task A_loop_device_is_a_vm_disk_and_outlives_the_vm()
    {
        var dir = Directory.CreateTempSubdirectory("kvm-tf-hostdev-").FullName;
        var file = Path.Combine(dir, "data.img");
        using (var stream = new FileStream(file, FileMode.CreateNew))
        {
            stream.SetLength(Bytes);
            stream.Write(Marker);
        }
        var loop = Run("losetup", "--find", "--show", file).Trim();
        try
        {
            using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
            var tf = new TerraformWorkspace(terraform, Config(agent, loop));
            tf.Apply();
            var vm = (await agent.Client.ListVmsAsync()).Single();
            Assert.Equal("running", vm.Status);
            Assert.Equal(Bytes, vm.HostDeviceSizeBytes!["scsi1"]);
            Assert.Equal(Bytes, (long)tf.State("kvm_vm.d")["host_device_size_bytes"]!["scsi1"]!);
            Assert.Equal(loop, (string)tf.State("kvm_vm.d")["disks"]!["scsi1"]!["host_device"]!);
            tf.AssertEmptyPlan();

            tf.Destroy();
            Assert.Empty(await agent.Client.ListVmsAsync());
            Assert.Contains(file, Run("losetup", "-a"), StringComparison.Ordinal);
            using (var stream = File.OpenRead(file))
            {
                var head = new byte[Marker.Length];
                stream.ReadExactly(head);
                Assert.Equal(Marker, head);
            }

            // Not a block device: refused when applied, naming the attribute; nothing is left.
            tf.Write(Config(agent, "/dev/null"));
            var failed = tf.ApplyFails();
            Assert.Contains("host_device", failed.Output, StringComparison.Ordinal);
            Assert.Contains("character device", failed.Output, StringComparison.Ordinal);
            Assert.Empty(await agent.Client.ListVmsAsync());
        }
        finally
        {
            Run("losetup", "-d", loop);
            var left = Run("losetup", "-a");
            Directory.Delete(dir, recursive: true);
            Assert.DoesNotContain(file, left, StringComparison.Ordinal);
        }
    }
}
