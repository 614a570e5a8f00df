using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Kvm.Agent.Tests.Support;
using Kvm.Agent.Vms;
using Kvm.Client;
using Kvm.Model;
using Microsoft.Extensions.DependencyInjection;

namespace Kvm.Agent.Tests.Vms;

/// <summary>
/// <c>disks.X.host_device</c> with real host block devices: loop devices this test attaches to sparse files in a temp
/// directory (and detaches in <c>finally</c>, also on failure), the real agent and real QEMU (TCG, the busybox kernel guest,
/// which lists its disks with their sizes on the serial console).
/// </summary>
[Collection("qemu")]
public sealed class HostDeviceTests : IAsyncLifetime
{
    private const long DeviceBytes = 48L << 20;
    private const long HotBytes = 24L << 20;
    private static readonly byte[] Marker = "KVM-HOST-DEVICE-DATA-MARKER"u8.ToArray();

    private TestAgent _agent = null!;
    private string _dir = null!;
    private readonly List<string> _loops = [];

    public async Task InitializeAsync()
    {
        _dir = Directory.CreateTempSubdirectory("kvm-hostdev-").FullName;
        _agent = await TestAgent.StartAsync();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await _agent.DisposeAsync();
        }
        finally
        {
            foreach (var loop in _loops)
                Run("losetup", "-d", loop);
            var left = Run("losetup", "-a");
            Directory.Delete(_dir, recursive: true);
            Assert.DoesNotContain(_dir, left, StringComparison.Ordinal);
        }
    }

    private KvmClient Client => _agent.Client;

    private VmMonitor Monitor(long vmId) => _agent.Host.Services.GetRequiredService<VmRuntime>().MonitorOf(vmId)!;

    private static string Run(params string[] argv)
    {
        var info = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in argv.Skip(1))
            info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{string.Join(' ', argv)} failed ({process.ExitCode}): {stderr}");
        return stdout;
    }

    /// <summary>A loop device on a new sparse file with <see cref="Marker"/> at 1 MiB; detached when the test ends.</summary>
    private (string Device, string File) Loop(string name, long bytes)
    {
        var file = Path.Combine(_dir, name);
        using (var stream = new FileStream(file, FileMode.CreateNew))
        {
            stream.SetLength(bytes);
            stream.Position = 1 << 20;
            stream.Write(Marker);
        }
        var device = Run("losetup", "--find", "--show", file).Trim();
        _loops.Add(device);
        return (device, file);
    }

    private static byte[] MarkerOf(string file)
    {
        using var stream = File.OpenRead(file);
        stream.Position = 1 << 20;
        var bytes = new byte[Marker.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static VmSpec Guest(string name, Dictionary<string, DiskSpec> disks) => new()
    {
        Name = name,
        Memory = new MemorySpec { SizeMib = 256 },
        Display = new DisplaySpec { Vga = "none", Vnc = false },
        Kernel = TestGuest.Kernel,
        Initrd = TestGuest.Initrd,
        Cmdline = "console=ttyS0 panic=-1",
        Disks = disks,
    };

    private async Task<Dictionary<string, string>> NodeDriversAsync(long vmId) =>
        ((JsonArray)(await Monitor(vmId).ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true }))!)
            .OfType<JsonObject>().ToDictionary(n => n["node-name"]!.GetValue<string>(), n => n["drv"]!.GetValue<string>());

    [Fact]
    public async Task AHostBlockDeviceIsTheGuestsDiskIsHotPluggedAndOutlivesTheVm()
    {
        var (loop, file) = Loop("data.img", DeviceBytes);
        // Named through a link, as /dev/disk/by-id names are.
        var byId = Path.Combine(_dir, "by-id-data");
        File.CreateSymbolicLink(byId, loop);
        var name = Specs.UniqueName("hostdev");
        var disks = new Dictionary<string, DiskSpec> { ["scsi1"] = new() { HostDevice = byId, Serial = "HOSTDEV1", Discard = true } };
        var vm = (await Client.CreateVmAsync(Guest(name, disks))).Value;
        var id = vm.VmId!.Value;
        Assert.Equal(DeviceBytes, vm.HostDeviceSizeBytes!["scsi1"]);

        // The guest sees one disk of the loop device's size (the kernel counts 512-byte sectors).
        IEnumerable<string> GuestDisks() => File.Exists(vm.SerialLog)
            ? File.ReadAllLines(vm.SerialLog).Where(l => l.StartsWith("KVM-TEST-GUEST-DISK ", StringComparison.Ordinal)).Select(l => l.Trim())
            : [];
        await Eventually.TrueAsync(() => GuestDisks().Any(), TimeSpan.FromSeconds(120), "the guest's disk list");
        var disk = Assert.Single(GuestDisks());
        Assert.Matches("^KVM-TEST-GUEST-DISK sd[a-z] " + (DeviceBytes / 512) + "$", disk);
        var drivers = await NodeDriversAsync(id);
        Assert.Equal("host_device", drivers["file-scsi1"]);
        Assert.Equal("raw", drivers["drive-scsi1"]);

        // Another running VM may not take the same device (here by its own name, not the link) unless both are read-only.
        var other = Specs.Running(Specs.UniqueName("hostdev"));
        other.Disks = new() { ["scsi1"] = new DiskSpec { HostDevice = loop, ReadOnly = true } };
        var conflict = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(other));
        Assert.Equal(HttpStatusCode.Conflict, conflict.Status);
        Assert.Contains("disks[\"scsi1\"].host_device", conflict.Detail, StringComparison.Ordinal);
        Assert.Contains($"{id}/scsi1", conflict.Detail, StringComparison.Ordinal);

        // Hot-plug a second device into the running VM: same QEMU, host_device node, its size reported.
        var (hot, hotFile) = Loop("hot.img", HotBytes);
        var more = new Dictionary<string, DiskSpec>(disks) { ["scsi2"] = new() { HostDevice = hot, ReadOnly = true } };
        var added = (await Client.UpdateVmAsync(id, Guest(name, more))).Value;
        Assert.Equal([new AppliedChange("disks[\"scsi2\"]", AppliedChange.Live)], added.Changes);
        Assert.Equal(vm.Pid, added.Vm.Pid);
        Assert.Equal("host_device", (await NodeDriversAsync(id))["file-scsi2"]);
        Assert.Equal(HotBytes, added.Vm.HostDeviceSizeBytes!["scsi2"]);

        // Read-only on both sides: a second VM may share it.
        var reader = Specs.Running(Specs.UniqueName("hostdev"));
        reader.Disks = new() { ["scsi0"] = new DiskSpec { HostDevice = hot, ReadOnly = true } };
        var shared = (await Client.CreateVmAsync(reader)).Value;
        Assert.Equal("running", shared.Status);
        await Client.DeleteVmAsync(shared.VmId!.Value, RunningVmDeletion.Force);

        // Unplugged live: its nodes leave QEMU, the device stays.
        var removed = (await Client.UpdateVmAsync(id, Guest(name, disks))).Value;
        Assert.Equal([new AppliedChange("disks[\"scsi2\"]", AppliedChange.Live)], removed.Changes);
        Assert.DoesNotContain("file-scsi2", (await NodeDriversAsync(id)).Keys);
        Assert.Contains(hotFile, Run("losetup", "-a"), StringComparison.Ordinal);
        Assert.Equal(Marker, MarkerOf(hotFile));

        // Deleting the VM leaves both devices attached and their data as it was.
        await Client.DeleteVmAsync(id, RunningVmDeletion.Force);
        var attached = Run("losetup", "-a");
        Assert.Contains(file, attached, StringComparison.Ordinal);
        Assert.Contains(hotFile, attached, StringComparison.Ordinal);
        Assert.True(File.Exists(byId));
        Assert.Equal(Marker, MarkerOf(file));
        Assert.Equal(Marker, MarkerOf(hotFile));
        Assert.Equal(DeviceBytes, new FileInfo(file).Length);
    }

    [Fact]
    public async Task APathThatIsNoBlockDeviceIsRefusedAtTheAttribute()
    {
        var regular = Path.Combine(_dir, "regular.img");
        File.WriteAllBytes(regular, new byte[4096]);
        foreach (var (path, says) in new[] { (regular, "regular file"), ("/dev/null", "character device"), (Path.Combine(_dir, "missing"), "does not exist") })
        {
            foreach (var powerState in new[] { "running", "stopped" })
            {
                var spec = Specs.Running(Specs.UniqueName("hostdev"));
                spec.PowerState = powerState;
                spec.Disks = new() { ["scsi1"] = new DiskSpec { HostDevice = path } };
                var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(spec));
                Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Status);
                var detail = Assert.Single(e.ErrorsByAttribute["disks[\"scsi1\"].host_device"]);
                Assert.Contains(says, detail, StringComparison.Ordinal);
            }
        }
        Assert.Empty(await Client.ListVmsAsync());
        Assert.Equal(new byte[4096], File.ReadAllBytes(regular));
    }
}
