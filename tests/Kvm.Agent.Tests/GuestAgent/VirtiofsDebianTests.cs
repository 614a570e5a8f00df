using Kvm.Agent.Tests.Support;
using Kvm.Agent.Vms;
using Kvm.Model;
using Xunit.Abstractions;

namespace Kvm.Agent.Tests.GuestAgent;

/// <summary>
/// A shared directory used for real: the Debian test guest (TCG) mounts the virtiofs share by its tag from cloud-init's
/// runcmd and writes into it; the host sees the file, and reads back what the host put there before the guest started.
/// </summary>
[Collection("qemu")]
public sealed class VirtiofsDebianTests(ITestOutputHelper output) : IAsyncLifetime
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
    public async Task TheGuestMountsTheShareByItsTagAndWritesToTheHostDirectory()
    {
        var client = _agent.Client;
        await File.WriteAllTextAsync(Path.Combine(_share, "from-host.txt"), "host-says-hello\n");
        var image = (await client.CreateImageAsync(new ImageSpec { Name = "debian-guest.qcow2", SourcePath = DebianGuest.Disk })).Value;
        var spec = DebianGuest.Spec(Specs.UniqueName("vfs"), image.ImageId!);
        spec.SharedDirs = new() { ["virtiofs0"] = new SharedDirSpec { Path = _share, Tag = "hostdata" } };
        spec.CloudInit = new CloudInitSpec
        {
            UserData = "#cloud-config\nruncmd:\n" +
                "  - [sh, -c, 'modprobe virtiofs; mkdir -p /mnt/h && mount -t virtiofs hostdata /mnt/h && " +
                "cat /mnt/h/from-host.txt > /mnt/h/from-guest.txt && uname -r >> /mnt/h/from-guest.txt']\n",
        };
        var vm = (await client.CreateVmAsync(spec)).Value;
        var id = vm.VmId!.Value;
        var written = Path.Combine(_share, "from-guest.txt");
        try
        {
            await Eventually.TrueAsync(() => File.Exists(written) && File.ReadAllLines(written).Length >= 2, TimeSpan.FromMinutes(5), "the guest's file in the share");
            var lines = await File.ReadAllLinesAsync(written);
            output.WriteLine(string.Join(" | ", lines));
            Assert.Equal("host-says-hello", lines[0]); // read through virtiofs from the host
            Assert.Contains("cloud", lines[1], StringComparison.Ordinal); // the guest's (cloud) kernel wrote it
        }
        catch
        {
            if (vm.SerialLog is { } log && File.Exists(log))
                output.WriteLine(string.Join('\n', File.ReadAllLines(log).TakeLast(40)));
            throw;
        }
        await client.DeleteVmAsync(id, Kvm.Client.RunningVmDeletion.Force);
        Assert.Empty(VirtiofsDaemons.LivePids(Path.Combine(_agent.RunDir, id.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        Assert.Empty(QemuReaper.PidsUnder(_agent.RunDir));
    }
}
