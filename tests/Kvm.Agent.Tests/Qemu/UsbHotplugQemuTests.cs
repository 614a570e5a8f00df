using System.Diagnostics;
using System.Text.Json.Nodes;
using Kvm.Agent.Qemu;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>
/// The usb-host pairs a hot-plug sends (<see cref="QemuCommand.DeviceArgsOf"/>, through the monitor's own option parser as the
/// agent sends them) plugged into a real QEMU started from a VM's argv with its controller and no USB devices, and unplugged
/// again. This host has no USB devices, so the agent refuses a usb-host entry before QEMU sees it (LiveChangeTests); QEMU
/// itself takes a device that is not there and waits for it, which is what runs here.
/// </summary>
public sealed class UsbHotplugQemuTests
{
    [RealQemuFact]
    public void Usb_host_pairs_plug_into_the_running_controller_at_the_slot_port_and_unplug()
    {
        var golden = GoldenCase.Load("devices-usb-passthrough");
        var dir = Directory.CreateTempSubdirectory("ku-").FullName;
        Process? qemu = null;
        try
        {
            var facts = golden.Facts with { QemuBinary = RealQemu.System!, DefaultAccelerator = "tcg" };
            var paths = golden.Paths with
            {
                RunDir = dir,
                QmpSocket = Path.Join(dir, "qmp.sock"),
                PidFile = Path.Join(dir, "qemu.pid"),
                SerialLog = Path.Join(dir, "serial.log"),
            };
            var withDevices = golden.Spec;
            withDevices.Kvm = false;
            // Started as the same VM without USB devices (and without SPICE): the tablet brings the controller.
            var running = GoldenCase.Load("devices-usb-passthrough").Spec;
            running.Kvm = false;
            running.UsbDevices = null;
            running.Display = null;
            Assert.True(Kvm.Model.Defaults.Apply(running).HasUsbController());
            var argv = QemuCommand.Build(running, facts, paths).Append("-S").ToList();
            qemu = RealQemu.Start(argv);
            var stderr = qemu.StandardError.ReadToEndAsync();
            using var qmp = DeviceQemuSmokeTests.Connect(paths.QmpSocket, qemu, stderr);
            string Human(string line) => qmp.Execute("human-monitor-command", new JsonObject { ["command-line"] = line })!.GetValue<string>();

            foreach (var slot in new[] { "usb0", "usb1", "usb13" })
            {
                var device = QemuCommand.DeviceArgsOf(withDevices, facts, paths, slot);
                Assert.True(device.Ok);
                var (option, value) = Assert.Single(device.Pairs);
                Assert.Equal("-device", option);
                Assert.Equal("", Human("device_add " + value).Trim());
            }
            var usb = Human("info usb");
            Assert.Matches(@"Port 2, .*ID: usb0", usb);
            Assert.Matches(@"Port 3, .*ID: usb1", usb);
            Assert.Matches(@"Port 15, .*ID: usb13", usb);
            Assert.Equal(0x046d, qmp.Execute("qom-get", new JsonObject { ["path"] = "/machine/peripheral/usb0", ["property"] = "vendorid" })!.GetValue<int>());
            Assert.Equal("2.3", qmp.Execute("qom-get", new JsonObject { ["path"] = "/machine/peripheral/usb1", ["property"] = "hostport" })!.GetValue<string>());

            foreach (var slot in new[] { "usb0", "usb1", "usb13" })
                qmp.Execute("device_del", new JsonObject { ["id"] = slot });
            var clock = Stopwatch.StartNew();
            while (Human("info usb").Contains("ID: usb", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(10))
                Thread.Sleep(50);
            Assert.DoesNotContain("ID: usb", Human("info usb"), StringComparison.Ordinal);
            Assert.Contains("ID: tablet", Human("info usb"), StringComparison.Ordinal);

            qmp.Execute("quit");
            Assert.True(qemu.WaitForExit(TimeSpan.FromSeconds(10)), "QEMU did not exit after quit");
        }
        finally
        {
            if (qemu is { HasExited: false })
            {
                qemu.Kill();
                qemu.WaitForExit();
            }
            qemu?.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }
}
