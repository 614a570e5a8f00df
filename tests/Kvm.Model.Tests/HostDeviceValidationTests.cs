using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Model.Tests;

/// <summary><c>disks.X.host_device</c>: a raw host block device, alone (no image, volume, size or format) and an absolute path.</summary>
public sealed class HostDeviceValidationTests
{
    private static IReadOnlyList<ValidationError> Errors(string disk) =>
        Validator.Validate(System.Text.Json.JsonSerializer.Deserialize<VmSpec>("""{"name":"a","disks":{"scsi1":""" + disk + "}}", ModelJson.Options)!);

    [Fact]
    public void A_host_device_needs_no_size_and_takes_the_usual_disk_options() =>
        Assert.Empty(Errors("""{"host_device":"/dev/disk/by-id/wwn-0x5000c500a1b2c3d4","read_only":true,"cache":"directsync","aio":"native","discard":true,"serial":"D1","ssd":true,"iothread":true,"mbps":10}"""));

    [Theory]
    [InlineData("volume_id", "\"default/data.qcow2\"")]
    [InlineData("image_id", "\"default/debian.qcow2\"")]
    [InlineData("size_gib", "8")]
    [InlineData("format", "\"raw\"")]
    [InlineData("pool", "\"default\"")]
    [InlineData("preallocation", "\"off\"")]
    [InlineData("linked_clone", "false")]
    public void Image_settings_are_refused_at_their_own_attribute(string attribute, string value)
    {
        var errors = Errors("""{"host_device":"/dev/sdb",""" + $"\"{attribute}\":{value}}}");
        Assert.Contains(errors, e => e.Attribute == $"disks[\"scsi1\"].{attribute}" && e.Detail.Contains("host_device", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("dev/sdb")]
    [InlineData("sdb")]
    [InlineData("/dev/../etc/passwd")]
    [InlineData("/dev/./sdb")]
    [InlineData("/dev/sd\nb")]
    public void The_path_must_be_absolute_and_plain(string path)
    {
        var errors = Errors("""{"host_device":""" + System.Text.Json.JsonSerializer.Serialize(path) + "}");
        Assert.Contains(errors, e => e.Attribute == "disks[\"scsi1\"].host_device");
    }
}
