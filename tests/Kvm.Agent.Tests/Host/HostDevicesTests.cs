using System.Net;
using System.Net.Http.Json;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Qemu;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;

namespace Kvm.Agent.Tests.Host;

/// <summary>
/// The host device inventory against this machine's real devices, and the start-time checks of a VM's passthrough
/// devices. This machine has PCI devices but no IOMMU and no USB devices, so a real passthrough cannot run here:
/// the golden argv (cases/devices-*) carry that proof, and these tests prove the agent refuses what cannot work.
/// </summary>
[Collection("qemu")]
public sealed class HostDevicesTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private KvmClient Client => _agent.Client;

    /// <summary>lspci's own view (pciutils reads the config space through its own code): address, class, vendor:device, driver.</summary>
    private static List<(string Address, string Class, string Ids, string? Driver)> Lspci()
    {
        var run = RealQemu.Run(["lspci", "-n", "-D", "-k"], TimeSpan.FromSeconds(20));
        Assert.True(run.Ok, run.StdErr);
        var devices = new List<(string, string, string, string?)>();
        foreach (var line in run.StdOut.Split('\n'))
        {
            if (line.Length > 0 && !char.IsWhiteSpace(line[0]))
            {
                var parts = line.Split(' ');
                devices.Add((parts[0], parts[1].TrimEnd(':'), parts[2], null));
            }
            else if (line.Trim().StartsWith("Kernel driver in use:", StringComparison.Ordinal))
            {
                devices[^1] = devices[^1] with { Item4 = line.Split(':', 2)[1].Trim() };
            }
        }
        return devices;
    }

    [Fact]
    public async Task TheInventoryListsThePciDevicesLspciSeesAndTheUsbDevicesSysfsHas()
    {
        var inventory = await _agent.RawClient().GetFromJsonAsync<HostDeviceInventory>("v1/host/devices", ModelJson.Options);
        var pci = inventory!.PciDevices!;
        var expected = Lspci();
        Assert.NotEmpty(expected); // every machine this runs on has at least a host bridge
        Assert.Equal(expected.Select(d => d.Address), pci.Select(d => d.Address));
        foreach (var (device, lspci) in pci.Zip(expected))
        {
            Assert.Equal(lspci.Ids, $"{device.VendorId![2..]}:{device.DeviceId![2..]}");
            Assert.StartsWith("0x" + lspci.Class, device.Class, StringComparison.Ordinal); // lspci -n shows class and subclass
            Assert.Equal(lspci.Driver, device.Driver);
        }

        // USB: the agent's list is exactly the devices sysfs names (none on this machine, whose bus has no USB controller).
        var sysUsb = Directory.Exists("/sys/bus/usb/devices")
            ? Directory.EnumerateFileSystemEntries("/sys/bus/usb/devices").Select(Path.GetFileName).Where(n => n!.Contains('-', StringComparison.Ordinal) && !n.Contains(':', StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList()
            : [];
        Assert.Equal(sysUsb, inventory.UsbDevices!.Select(u => u.BusPort));

        // kvm_host (GET /v1/host) carries the same lists.
        var host = await Client.GetHostAsync();
        Assert.Equal(pci.Select(d => d.Address), host.PciDevices!.Select(d => d.Address));
        Assert.Equal(inventory.UsbDevices!.Count, host.UsbDevices!.Count);
    }

    [Fact]
    public async Task AStartWithMissingHostDevicesFailsNamingEachAttributeAndStartsNothing()
    {
        var spec = Specs.Running();
        spec.PowerState = "stopped";
        spec.PciDevices = new() { ["hostpci0"] = new PciDeviceSpec { Address = "0000:7e:1f.7" } };
        spec.UsbDevices = new()
        {
            ["usb0"] = new UsbDeviceSpec { Host = "1d6b:7f01" },
            ["usb1"] = new UsbDeviceSpec { Host = "9-9.9" },
        };
        spec.SerialPorts = new() { ["serial1"] = new SerialPortSpec { Type = "/dev/kvm-test-no-such-tty" } };
        spec.SharedDirs = new() { ["virtiofs0"] = new SharedDirSpec { Path = "/nonexistent/kvm-test-share" } };
        var vm = (await Client.CreateVmAsync(spec)).Value; // defining it is fine: devices are checked when it starts
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.StartVmAsync(vm.VmId!.Value));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Status);
        var errors = e.ErrorsByAttribute;
        Assert.Contains("no PCI device 0000:7e:1f.7", string.Join(" ", errors["pci_devices[\"hostpci0\"].address"]), StringComparison.Ordinal);
        Assert.Contains("no USB device 1d6b:7f01", string.Join(" ", errors["usb_devices[\"usb0\"].host"]), StringComparison.Ordinal);
        Assert.Contains("bus-port 9-9.9", string.Join(" ", errors["usb_devices[\"usb1\"].host"]), StringComparison.Ordinal);
        Assert.Contains("not a character device", string.Join(" ", errors["serial_ports[\"serial1\"].type"]), StringComparison.Ordinal);
        Assert.Contains("does not exist", string.Join(" ", errors["shared_dirs[\"virtiofs0\"].path"]), StringComparison.Ordinal);
        Assert.Equal("stopped", (await Client.GetVmAsync(vm.VmId!.Value)).Value.Status);
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));
    }

    [Fact]
    public async Task AnExistingPciDeviceWithoutIommuOrVfioIsRefusedWithTheReason()
    {
        var target = HostDevices.Read().PciDevices!.First();
        var spec = Specs.Running();
        spec.PciDevices = new() { ["hostpci3"] = new PciDeviceSpec { Address = target.Address } };
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(spec));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Status);
        var detail = string.Join(" ", e.ErrorsByAttribute["pci_devices[\"hostpci3\"].address"]);
        // Without an IOMMU the device has no group; with one, its group is bound to its host driver, never vfio-pci here.
        Assert.Matches(target.IommuGroup is null ? "has no IOMMU group" : "is not bound to vfio-pci", detail);
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));
    }
}
