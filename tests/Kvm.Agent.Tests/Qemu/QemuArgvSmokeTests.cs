using System.Diagnostics;
using System.Text.Json.Nodes;
using Kvm.Agent.Host;
using Kvm.Agent.Qemu;
using Xunit.Abstractions;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>A theory that skips, with the reason, when the real QEMU tools are missing.</summary>
public sealed class RealQemuTheoryAttribute : TheoryAttribute
{
    public RealQemuTheoryAttribute()
    {
        if (RealQemu.MissingReason is { } reason)
            Skip = reason;
    }
}

/// <summary>A fact that skips, with the reason, when the real QEMU tools are missing.</summary>
public sealed class RealQemuFactAttribute : FactAttribute
{
    public RealQemuFactAttribute()
    {
        if (RealQemu.MissingReason is { } reason)
            Skip = reason;
    }
}

/// <summary>
/// Proves golden argv are real: each case is built again with real files in a temp dir (same file names,
/// commas included), started with the real QEMU under TCG with <c>-S</c> (so no guest code runs), and
/// checked over QMP: status, block devices and their nodes, device ids, VNC. Bridged NICs need a tap
/// device and are covered by golden files only.
/// </summary>
public sealed class QemuArgvSmokeTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases() =>
    [
        "minimal", "minimal-pc", "accel-tcg", "bios-virtio-disk", "uefi-4m", "uefi-2m", "uefi-pc", "uefi-secure-boot",
        "scsi-lsi-two-controllers", "scsi-lsi53c810", "scsi-megasas", "scsi-pvscsi", "scsi-virtio-scsi-pci",
        "scsi-virtio-single-three-disks", "disk-sata-vmdk", "disk-ide-pc", "disk-ide-q35", "disk-cache-modes", "disk-aio-modes",
        "disk-read-only", "disk-virtio-iothread-discard-serial", "disk-scsi-ssd-discard", "disk-volume",
        "cdrom-iso", "cdrom-empty", "cdrom-iso-scsi-and-sata", "nic-models-user", "nic-virtio-user", "windows-tcg-rtc-utc",
        "acpi-off-pc", "acpi-off-q35", "vga-cirrus", "vga-vmware", "vga-qxl", "vga-virtio", "vga-none", "vnc-off",
        "cpu-max-tcg", "cpu-x86-64-v2-aes-tcg", "cpu-qemu64-tcg", "comma-injection", "machine-versioned",
        "cpu-vcpus-hotplug", "memory-hotplug", "memory-ksm-off", "numa-two-nodes",
    ];

    [RealQemuTheory]
    [MemberData(nameof(Cases))]
    public void Golden_argv_starts_a_real_QEMU(string name)
    {
        var golden = GoldenCase.Load(name);
        Assert.Empty(golden.Paths.Taps);
        var dir = Directory.CreateTempSubdirectory("kq-").FullName; // short: the QMP socket path must stay under 108 bytes
        Process? qemu = null;
        try
        {
            var facts = golden.Facts with
            {
                QemuBinary = RealQemu.System!,
                Ovmf = HostProbe.FindOvmf("/usr/share/OVMF", File.Exists),
                KvmPresent = true,
                DefaultAccelerator = "tcg",
            };
            var spec = golden.Spec;
            spec.Kvm = false;
            var paths = RealPaths(golden, facts, dir);
            var argv = QemuCommand.Build(spec, facts, paths).Append("-S").ToList();
            output.WriteLine(string.Join(' ', argv));

            qemu = RealQemu.Start(argv);
            var stderr = qemu.StandardError.ReadToEndAsync();
            using var qmp = ConnectWhenListening(paths.QmpSocket, qemu, stderr);

            Assert.Equal("prelaunch", qmp.Execute("query-status")!["status"]!.GetValue<string>());
            Assert.Equal(qemu.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(paths.PidFile).Trim());
            CheckBlockDevices(qmp, golden, paths);
            CheckDeviceIds(qmp, golden);
            CheckVnc(qmp, golden);

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

    private static VmPaths RealPaths(GoldenCase golden, HostFacts facts, string dir)
    {
        string Create(string goldenPath, string format, string size)
        {
            var file = Path.Join(dir, Path.GetFileName(goldenPath));
            var created = RealQemu.Run([RealQemu.Img!, "create", "-q", "-f", format, file, size], TimeSpan.FromSeconds(30));
            Assert.True(created.Ok, created.StdErr);
            return file;
        }
        string? efiVars = null;
        if (QemuCommand.EfiVarsTemplate(golden.Spec, facts) is { } template)
            File.Copy(template, efiVars = Path.Join(dir, "efivars.fd"));
        return golden.Paths with
        {
            RunDir = dir,
            QmpSocket = Path.Join(dir, Path.GetFileName(golden.Paths.QmpSocket)),
            PidFile = Path.Join(dir, "qemu.pid"),
            SerialLog = Path.Join(dir, Path.GetFileName(golden.Paths.SerialLog)),
            EfiVars = efiVars,
            Disks = golden.Paths.Disks.ToDictionary(d => d.Key, d => new DiskFile(Create(d.Value.Path, d.Value.Format, "64M"), d.Value.Format)),
            Cdroms = golden.Paths.Cdroms.ToDictionary(c => c.Key, c => c.Value is null ? null : Create(c.Value, "raw", "1M")),
        };
    }

    // The socket file appears when QEMU binds, a moment before it listens: retry until it accepts.
    private static QmpClient ConnectWhenListening(string socket, Process qemu, Task<string> stderr)
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
                catch (System.Net.Sockets.SocketException) when (clock.Elapsed < TimeSpan.FromSeconds(15))
                {
                }
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(15))
                Assert.Fail("QEMU did not accept QMP connections within 15 s");
            Thread.Sleep(10);
        }
    }

    private static void CheckBlockDevices(QmpClient qmp, GoldenCase golden, VmPaths paths)
    {
        var blocks = qmp.Execute("query-block")!.AsArray().Select(b => b!.AsObject()).ToList();
        JsonObject Find(string slot) => blocks.SingleOrDefault(b => b["qdev"]!.GetValue<string>() is var q && (q == slot || q.StartsWith($"/machine/peripheral/{slot}/", StringComparison.Ordinal)))
            ?? throw new Xunit.Sdk.XunitException($"query-block has no device {slot}: {string.Join(", ", blocks.Select(b => b["qdev"]))}");

        foreach (var (slot, disk) in golden.Spec.Disks ?? [])
        {
            var inserted = Find(slot)["inserted"]!;
            Assert.Equal(QemuCommand.DriveNode(slot), inserted["node-name"]!.GetValue<string>());
            Assert.Equal(paths.Disks[slot].Format, inserted["drv"]!.GetValue<string>());
            Assert.Equal(paths.Disks[slot].Path, inserted["image"]!["filename"]!.GetValue<string>());
            Assert.Equal(disk.ReadOnly == true, inserted["ro"]!.GetValue<bool>());
            var cache = QemuCommand.CacheModes[disk.Cache ?? "none"];
            Assert.Equal(cache.Direct, inserted["cache"]!["direct"]!.GetValue<bool>());
            Assert.Equal(cache.NoFlush, inserted["cache"]!["no-flush"]!.GetValue<bool>());
            Assert.Equal(cache.WriteCache, inserted["cache"]!["writeback"]!.GetValue<bool>());
        }
        foreach (var (slot, cdrom) in golden.Spec.Cdroms ?? [])
        {
            var device = Find(slot);
            Assert.True(device["removable"]!.GetValue<bool>());
            if (cdrom.VolumeId is null)
            {
                Assert.Null(device["inserted"]);
            }
            else
            {
                Assert.Equal(paths.Cdroms[slot], device["inserted"]!["image"]!["filename"]!.GetValue<string>());
                Assert.True(device["inserted"]!["ro"]!.GetValue<bool>());
            }
        }
        if (golden.Spec.Firmware?.Type == "uefi")
            Assert.Contains(qmp.Execute("query-named-block-nodes")!.AsArray(), n => n!["node-name"]!.GetValue<string>() == QemuCommand.EfiVarsNode);
    }

    private static void CheckDeviceIds(QmpClient qmp, GoldenCase golden)
    {
        var ids = qmp.Execute("qom-list", new JsonObject { ["path"] = "/machine/peripheral" })!.AsArray()
            .Select(p => p!["name"]!.GetValue<string>()).ToHashSet();
        var expected = (golden.Spec.Disks?.Keys ?? Enumerable.Empty<string>())
            .Concat(golden.Spec.Cdroms?.Keys ?? Enumerable.Empty<string>())
            .Concat(golden.Spec.NetworkInterfaces?.Keys ?? Enumerable.Empty<string>());
        foreach (var id in expected)
            Assert.Contains(id, ids);
        foreach (var (slot, _) in golden.Spec.NetworkInterfaces ?? [])
        {
            var mac = qmp.Execute("qom-get", new JsonObject { ["path"] = $"/machine/peripheral/{slot}", ["property"] = "mac" })!.GetValue<string>();
            Assert.Equal(golden.Paths.Macs[slot], mac, ignoreCase: true);
        }
    }

    private static void CheckVnc(QmpClient qmp, GoldenCase golden)
    {
        var vnc = qmp.Execute("query-vnc")!;
        var wanted = golden.Spec.Display?.Vnc != false && golden.Spec.Display?.Vga is null or "std" or "cirrus" or "vmware" or "qxl" or "virtio";
        Assert.Equal(wanted, vnc["enabled"]!.GetValue<bool>());
        if (wanted)
        {
            Assert.Equal("127.0.0.1", vnc["host"]!.GetValue<string>());
            Assert.InRange(int.Parse(vnc["service"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture), 5900, 65535);
        }
    }
}
