using System.Text.Json.Nodes;
using Kvm.Tests.Shared;

namespace Kvm.Terraform.Tests.RealTerraform;

/// <summary>
/// The device settings through the real terraform and a real agent: a running VM with RNG, watchdog, sound, a socket
/// serial port, SMBIOS and a shared directory; a stopped VM with USB and PCI passthrough (this machine has neither device,
/// so it is only defined: the agent checks host devices when a VM starts); empty plans after apply and import; plan-time
/// validation; and the host's PCI devices in the kvm_host data source.
/// </summary>
[Collection(TerraformCollection.Name)]
public class DeviceTests(TerraformFixture terraform)
{
    [Fact]
    public async Task Device_settings_apply_round_trip_import_and_validate()
    {
        using var agent = await AgentProcess.StartAsync(terraform.RepoRoot);
        var share = Directory.CreateTempSubdirectory("kvm-tf-share-").FullName;
        try
        {
            var kernel = Environment.GetEnvironmentVariable("KVM_TEST_KERNEL") ?? Path.Combine(terraform.RepoRoot, ".work", "guest", "vmlinuz");
            var body = TerraformWorkspace.Header(agent) + $$"""
                resource "kvm_vm" "devices" {
                  name    = "tf-devices"
                  kernel  = "{{kernel}}"
                  memory  = { size_mib = 128 }
                  display = { vga = "none", vnc = false }
                  update_policy = { shutdown_timeout_seconds = 3 }
                  rng          = { source = "/dev/urandom", max_bytes = 2048 }
                  watchdog     = { model = "i6300esb", action = "pause" }
                  audio        = { device = "ich9-intel-hda", driver = "none" }
                  serial_ports = { serial1 = { type = "socket" } }
                  smbios       = { manufacturer = "ACME, Inc.", product = "Box", uuid = "5c1b2d7e-0a41-4c7b-9f3e-6a2b8c9d0e1f" }
                  shared_dirs  = { virtiofs0 = { path = "{{share}}", tag = "data" } }
                }

                resource "kvm_vm" "passthrough" {
                  name        = "tf-passthrough"
                  power_state = "stopped"
                  memory      = { size_mib = 128 }
                  usb_devices = { usb0 = { host = "046d:c52b" }, usb1 = { host = "1-2.3", usb3 = true } }
                  pci_devices = { hostpci0 = { address = "01:00", pcie = true, primary_gpu = true, rombar = false } }
                }

                data "kvm_host" "h" {}

                output "pci_count" {
                  value = length(data.kvm_host.h.pci_devices)
                }
                """;
            var dir = terraform.NewWorkDirectory(body);
            terraform.Init(dir);
            var apply = terraform.Run(dir, "apply", "-auto-approve", "-input=false", "-no-color");
            Assert.True(apply.ExitCode == 0, apply.Output);
            AssertEmptyPlan(dir);

            var show = JsonNode.Parse(terraform.Run(dir, "show", "-json", "-no-color").Stdout)!["values"]!;
            var devices = show["root_module"]!["resources"]!.AsArray().Single(r => (string)r!["address"]! == "kvm_vm.devices")!["values"]!;
            Assert.Equal("running", (string)devices["status"]!);
            Assert.Equal("pause", (string)devices["watchdog"]!["action"]!);
            Assert.Equal(1024 * 2, (long)devices["rng"]!["max_bytes"]!);
            var pciCount = (long)show["outputs"]!["pci_count"]!["value"]!;
            Assert.Equal(Directory.GetFileSystemEntries("/sys/bus/pci/devices").Length, pciCount);
            var vmId = (long)devices["vm_id"]!;
            var vm = (await agent.Client.GetVmAsync(vmId)).Value;
            Assert.Equal("ACME, Inc.", vm.Smbios!.Manufacturer);
            var passthroughId = (long)show["root_module"]!["resources"]!.AsArray().Single(r => (string)r!["address"]! == "kvm_vm.passthrough")!["values"]!["vm_id"]!;
            var passthrough = (await agent.Client.FindVmAsync(passthroughId))!;
            Assert.Equal("stopped", passthrough.Status);
            Assert.Equal("01:00", passthrough.PciDevices!["hostpci0"].Address);

            // Import round-trips every device setting.
            Assert.Equal(0, terraform.Run(dir, "state", "rm", "kvm_vm.devices").ExitCode);
            var import = terraform.Run(dir, "import", "-input=false", "-no-color", "kvm_vm.devices", vmId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(import.ExitCode == 0, import.Output);
            AssertEmptyPlan(dir);

            // Plan-time validation names the attribute.
            File.WriteAllText(Path.Combine(dir, "main.tf"), body.Replace("pcie = true, primary_gpu = true", "pcie = true, primary_gpu = true }, hostpci1 = { address = \"02:00.0\", primary_gpu = true", StringComparison.Ordinal));
            var invalid = terraform.Run(dir, "plan", "-input=false", "-no-color");
            Assert.NotEqual(0, invalid.ExitCode);
            Assert.Contains("only one device can be the primary GPU", invalid.Output, StringComparison.Ordinal);

            File.WriteAllText(Path.Combine(dir, "main.tf"), body);
            var destroy = terraform.Run(dir, "destroy", "-auto-approve", "-input=false", "-no-color");
            Assert.True(destroy.ExitCode == 0, destroy.Output);
            Assert.Empty(await agent.Client.ListVmsAsync());
        }
        finally
        {
            Directory.Delete(share, recursive: true);
        }
    }

    private void AssertEmptyPlan(string dir)
    {
        var plan = terraform.Run(dir, "plan", "-input=false", "-no-color", "-detailed-exitcode");
        Assert.True(plan.ExitCode == 0, "expected no changes:\n" + plan.Output);
    }
}
