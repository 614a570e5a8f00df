using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Kvm.Agent.Host;
using Kvm.Agent.Qemu;
using Kvm.Agent.Tests.Support;
using Kvm.Agent.Vms;
using Kvm.Model;
using Xunit.Abstractions;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>
/// The device golden argv run by the real QEMU (TCG, <c>-S</c>: no guest code), checked over QMP: the devices exist
/// (qom-list), sit at their PCI slots with their vendor/device IDs (query-pci), and take the options the argv gave.
/// vfio-pci needs host devices this machine lacks: golden files and the agent's start-time checks (HostDevicesTests) carry
/// it. QEMU takes a usb-host device that is not there (it waits for it), so the USB case runs here.
/// </summary>
public sealed class DeviceQemuSmokeTests(ITestOutputHelper output)
{
    /// <summary>Case → peripheral ids it must have → PCI (slot, vendor, device) it must show on bus 0.</summary>
    public static TheoryData<string, string[], string[]> Cases() => new()
    {
        { "devices-rng-watchdog-audio-smbios", ["audio0", "audio0-codec0", "rng0", "watchdog0"], ["1b:8086:293e", "1e:1af4:1005", "1d:8086:25ab"] },
        { "devices-rng-unlimited-watchdog-ib700", ["rng0", "watchdog0"], ["1e:1af4:1005"] },
        { "devices-audio-ac97-spice-qxl", ["audio0", "vga"], ["1b:8086:2415", "02:1b36:0100"] },
        { "devices-audio-intel-hda-spice", ["audio0", "audio0-codec0"], ["1b:8086:2668"] },
        { "devices-serial0-socket-vga-serial0", ["serial0", "serial2"], [] },
        { "devices-smbios-base64", [], [] },
        // usb-host devices the host lacks: QEMU takes them and waits for them to appear (the agent refuses them at start).
        { "devices-usb-passthrough", ["xhci", "tablet", "usb0", "usb1", "usb2", "usb13"], ["04:1b36:000d"] },
    };

    [RealQemuTheory]
    [MemberData(nameof(Cases))]
    public void Device_argv_runs_in_a_real_QEMU(string name, string[] ids, string[] pci)
    {
        var golden = GoldenCase.Load(name);
        var dir = Directory.CreateTempSubdirectory("kd-").FullName;
        Process? qemu = null;
        try
        {
            var facts = golden.Facts with { QemuBinary = RealQemu.System!, DefaultAccelerator = "tcg" };
            var spec = golden.Spec;
            spec.Kvm = false;
            var paths = golden.Paths with
            {
                RunDir = dir,
                QmpSocket = Path.Join(dir, "qmp.sock"),
                PidFile = Path.Join(dir, "qemu.pid"),
                SerialLog = Path.Join(dir, "serial.log"),
            };
            var argv = QemuCommand.Build(spec, facts, paths).Append("-S").ToList();
            output.WriteLine(string.Join(' ', argv));
            qemu = RealQemu.Start(argv);
            var stderr = qemu.StandardError.ReadToEndAsync();
            using var qmp = Connect(paths.QmpSocket, qemu, stderr);

            var peripherals = qmp.Execute("qom-list", new JsonObject { ["path"] = "/machine/peripheral" })!.AsArray()
                .Select(p => p!["name"]!.GetValue<string>()).ToHashSet();
            foreach (var id in ids)
                Assert.Contains(id, peripherals);
            var devices = qmp.Execute("query-pci")!.AsArray()[0]!["devices"]!.AsArray()
                .Select(d => $"{d!["slot"]!.GetValue<int>():x2}:{d["id"]!["vendor"]!.GetValue<int>():x4}:{d["id"]!["device"]!.GetValue<int>():x4}").ToList();
            foreach (var want in pci)
                Assert.Contains(want, devices);

            if (spec.Rng is { MaxBytes: > 0 } rng)
                Assert.Equal(rng.MaxBytes, Get(qmp, "rng0", "max-bytes")!.GetValue<long>());
            if (spec.Display?.Spice == true)
                Assert.True(qmp.Execute("query-spice")!["enabled"]!.GetValue<bool>());
            foreach (var slot in spec.SerialPorts?.Keys.ToList() ?? [])
                if (spec.SerialPorts![slot].Type == "socket")
                    Assert.True(Posix.IsSocket(QemuCommand.SerialSocket(paths, slot)), $"{slot} has no socket");
            foreach (var slot in spec.UsbDevices?.Keys.ToList() ?? [])
                Assert.Equal((int.Parse(slot[3..], System.Globalization.CultureInfo.InvariantCulture) + 2).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Get(qmp, slot, "port")!.GetValue<string>()); // usbN at port N+2, USB 3 or not
            if (spec.Smbios is not null)
                Assert.Contains("-smbios", argv); // the table itself is checked in the guest (DeviceGuestTests)

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

    private static JsonNode? Get(QmpClient qmp, string id, string property) =>
        qmp.Execute("qom-get", new JsonObject { ["path"] = "/machine/peripheral/" + id, ["property"] = property });

    internal static QmpClient Connect(string socket, Process qemu, Task<string> stderr)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (qemu.HasExited)
                Assert.Fail($"QEMU exited with status {qemu.ExitCode}: {stderr.Result}");
            if (File.Exists(socket))
            {
                try
                {
                    return QmpClient.Connect(socket);
                }
                catch (SocketException) when (clock.Elapsed < TimeSpan.FromSeconds(15))
                {
                }
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(15))
                Assert.Fail("QEMU did not accept QMP connections within 15 s");
            Thread.Sleep(10);
        }
    }
}

/// <summary>
/// A real guest (the test kernel under TCG, through the real agent) with an RNG, a watchdog, a sound card with the
/// `none` driver, a second serial port on a socket and SMBIOS fields: the guest kernel's boot log on serial0 shows the
/// firmware tables and devices it found.
/// </summary>
[Collection("qemu")]
public sealed class DeviceGuestTests : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync();

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    [Fact]
    public async Task TheGuestKernelSeesTheSmbiosTablesAndEveryDevice()
    {
        var client = _agent.Client;
        var spec = new VmSpec
        {
            Name = Specs.UniqueName("devices"),
            Memory = new MemorySpec { SizeMib = 256 },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            Kernel = TestGuest.Kernel,
            Initrd = TestGuest.Initrd,
            Cmdline = "console=ttyS0 panic=-1 kvmtest=poweroff",
            Rng = new RngSpec(),
            Watchdog = new WatchdogSpec { Action = "pause" },
            Audio = new AudioSpec { Driver = "none" },
            SerialPorts = new() { ["serial1"] = new SerialPortSpec { Type = "socket" } },
            Smbios = new SmbiosSpec { Manufacturer = "Kvm Test, Inc.", Product = "DeviceBox", Serial = "SN-4711", Uuid = "5c1b2d7e-0a41-4c7b-9f3e-6a2b8c9d0e1f" },
        };
        var vm = (await client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;
        Assert.Equal("running", vm.Status);
        // The extra serial port's socket accepts a terminal while the VM runs.
        var socket = Path.Combine(_agent.RunDir, id.ToString(System.Globalization.CultureInfo.InvariantCulture), "serial1.sock");
        using (var terminal = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            await terminal.ConnectAsync(new UnixDomainSocketEndPoint(socket));

        await Eventually.TrueAsync(() => File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal),
            TimeSpan.FromSeconds(120), "the guest's serial output");
        var log = await File.ReadAllTextAsync(vm.SerialLog!);
        // The kernel prints the SMBIOS system manufacturer and product ("DMI: Kvm Test, Inc. DeviceBox, BIOS …").
        Assert.Contains("DMI: Kvm Test, Inc. DeviceBox", log, StringComparison.Ordinal);
        // PCI enumeration: the HDA controller, virtio RNG and i6300ESB watchdog at their fixed slots.
        Assert.Matches(@"pci 0000:00:1b\.0: \[8086:293e\]", log);
        Assert.Matches(@"pci 0000:00:1e\.0: \[1af4:1005\]", log);
        Assert.Matches(@"pci 0000:00:1d\.0: \[8086:25ab\]", log);
        // The 8250 driver finds serial1 as the second UART (COM2, I/O 0x2f8).
        Assert.Matches(@"ttyS1 at I/O 0x2f8", log);

        await Eventually.TrueAsync(async () => (await client.GetVmAsync(id)).Value.Status == "stopped", TimeSpan.FromSeconds(60), "status stopped after the guest powered off");
        await client.DeleteVmAsync(id, Kvm.Client.RunningVmDeletion.Refuse);
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));
    }
}

/// <summary>
/// virtiofs through the real agent: one virtiofsd per share, started before QEMU (which only starts when the vhost-user
/// handshake with the daemon succeeds), the guest kernel enumerating the virtio-fs device, and the daemon killed by its
/// recorded PID when the VM is gone. The test guest has no virtiofs module, so mounting in the guest is not shown here.
/// </summary>
[Collection("qemu")]
public sealed class VirtiofsTests : IAsyncLifetime
{
    private TestAgent _agent = null!;
    private string _share = null!;

    public async Task InitializeAsync()
    {
        _agent = await TestAgent.StartAsync();
        _share = Directory.CreateTempSubdirectory("kvm-share-").FullName;
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        Directory.Delete(_share, recursive: true);
    }

    [Fact]
    public async Task AShareRunsItsOwnVirtiofsdWhichTheGuestSeesAndWhichEndsWithTheVm()
    {
        Assert.True(VirtiofsDaemons.FindBinary() is not null, "virtiofsd is missing (qemu-system-common ships /usr/lib/qemu/virtiofsd)");
        var client = _agent.Client;
        var spec = new VmSpec
        {
            Name = Specs.UniqueName("virtiofs"),
            Memory = new MemorySpec { SizeMib = 256 },
            Display = new DisplaySpec { Vga = "none", Vnc = false },
            Kernel = TestGuest.Kernel,
            Initrd = TestGuest.Initrd,
            Cmdline = "console=ttyS0 panic=-1 kvmtest=poweroff",
            SharedDirs = new() { ["virtiofs0"] = new SharedDirSpec { Path = _share, Tag = "data" } },
        };
        var vm = (await client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;
        Assert.Equal("running", vm.Status);
        var runDir = Path.Combine(_agent.RunDir, id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var daemon = Assert.Single(VirtiofsDaemons.LivePids(runDir));
        Assert.Contains("source=" + _share, ProcessTable.ReadCommandLine(daemon));

        await Eventually.TrueAsync(() => File.Exists(vm.SerialLog) && File.ReadAllText(vm.SerialLog).Contains("KVM-TEST-GUEST-BOOTED", StringComparison.Ordinal),
            TimeSpan.FromSeconds(120), "the guest's serial output");
        Assert.Matches(@"pci 0000:00:[0-9a-f]{2}\.0: \[1af4:105a\]", await File.ReadAllTextAsync(vm.SerialLog!)); // virtio-fs

        await Eventually.TrueAsync(async () => (await client.GetVmAsync(id)).Value.Status == "stopped", TimeSpan.FromSeconds(60), "status stopped after the guest powered off");
        Assert.False(ProcessTable.IsAlive(daemon) && ProcessTable.ReadState(daemon) != 'Z', "virtiofsd outlived its VM");
        Assert.Empty(VirtiofsDaemons.LivePids(runDir));
        await client.DeleteVmAsync(id, Kvm.Client.RunningVmDeletion.Refuse);
    }

    [Fact]
    public async Task ReadOnlyNeedsTheRustDaemonAndAMissingDirectoryIsRefused()
    {
        var spec = Specs.Running();
        spec.SharedDirs = new() { ["virtiofs0"] = new SharedDirSpec { Path = _share, ReadOnly = true } };
        if (VirtiofsDaemons.FindBinary() is { } binary && !VirtiofsDaemons.IsRust(binary))
        {
            var e = await Assert.ThrowsAsync<Kvm.Client.KvmApiException>(() => _agent.Client.CreateVmAsync(spec));
            Assert.Contains("shared_dirs[\"virtiofs0\"].read_only", e.ErrorsByAttribute.Keys);
        }
        spec.SharedDirs["virtiofs0"] = new SharedDirSpec { Path = _share + "-missing" };
        var missing = await Assert.ThrowsAsync<Kvm.Client.KvmApiException>(() => _agent.Client.CreateVmAsync(spec));
        Assert.Contains("shared_dirs[\"virtiofs0\"].path", missing.ErrorsByAttribute.Keys);
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));
    }
}
