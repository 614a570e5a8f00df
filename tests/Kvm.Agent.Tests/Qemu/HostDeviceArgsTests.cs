using Kvm.Agent.Qemu;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>A host-device disk hot-plugs with exactly its cold-start nodes: a host_device protocol node under a raw one.</summary>
public sealed class HostDeviceArgsTests
{
    [Theory]
    [InlineData("scsi1")]
    [InlineData("virtio1")]
    public void A_hot_plugged_host_device_gets_the_argv_nodes(string slot)
    {
        var input = GoldenCase.Load("disk-host-device");
        var argv = QemuCommand.Build(input.Spec, input.Facts, input.Paths);
        var device = QemuCommand.DeviceArgsOf(input.Spec, input.Facts, input.Paths, slot);
        Assert.True(device.Ok);
        var blockdevs = device.Pairs.Where(p => p.Option == "-blockdev").Select(p => p.Value).ToList();
        Assert.Equal(2, blockdevs.Count);
        Assert.StartsWith("driver=host_device,filename=/dev/disk/by-id/", blockdevs[0], StringComparison.Ordinal);
        Assert.StartsWith($"driver=raw,file=file-{slot},", blockdevs[1], StringComparison.Ordinal);
        foreach (var (_, value) in device.Pairs)
            Assert.Contains(value, argv);
    }
}
