using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Model.Tests;

public class ValidationTests
{
    private static VmSpec Parse(string json) => JsonSerializer.Deserialize<VmSpec>(json, ModelJson.Options)!;

    private static IReadOnlyList<ValidationError> Errors(string json) => Validator.Validate(Parse(json));

    [Fact]
    public void MinimalVmIsValid() => Assert.Empty(Errors("""{"name":"web-01"}"""));

    [Fact]
    public void NameIsRequired() =>
        Assert.Equal(new ValidationError("name", "is required."), Assert.Single(Errors("{}")));

    [Theory]
    [InlineData("../etc")]
    [InlineData("a/b")]
    [InlineData("a\u0000b")]
    [InlineData("line\nbreak")]
    [InlineData("disk,readonly=on")]
    [InlineData("$(reboot)")]
    [InlineData("-leading-dash")]
    public void HostileNamesAreRefusedAtTheNameAttribute(string name)
    {
        var spec = new VmSpec { Name = name };
        var error = Assert.Single(Validator.Validate(spec));
        Assert.Equal("name", error.Attribute);
        Assert.DoesNotContain('\n', error.Detail);
        Assert.DoesNotContain('\0', error.Detail);
    }

    [Fact]
    public void A300CharacterNameIsTooLong()
    {
        var error = Assert.Single(Validator.Validate(new VmSpec { Name = new string('a', 300) }));
        Assert.Equal("name", error.Attribute);
        Assert.Contains("at most 63", error.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void OutOfRangeNumbersNameTheNestedAttribute()
    {
        var errors = Errors("""{"name":"a","cpu":{"cores":0},"memory":{"size_mib":8}}""");
        Assert.Contains(errors, e => e.Attribute == "cpu.cores" && e.Detail.Contains("between 1 and 256", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Attribute == "memory.size_mib");
    }

    [Fact]
    public void UnknownEnumValueListsTheAllowedOnes()
    {
        var error = Assert.Single(Errors("""{"name":"a","disks":{"scsi0":{"size_gib":4,"cache":"fast"}}}"""));
        Assert.Equal("disks[\"scsi0\"].cache", error.Attribute);
        Assert.Contains("none, writeback", error.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("usb0")]
    [InlineData("scsi31")]
    [InlineData("virtio16")]
    [InlineData("ide4")]
    public void UnknownBusOrSlotIsRefusedAtTheKey(string slot)
    {
        var error = Assert.Single(Errors("""{"name":"a","disks":{"SLOT":{"size_gib":4}}}""".Replace("SLOT", slot, StringComparison.Ordinal)));
        Assert.Equal($"disks[\"{slot}\"]", error.Attribute);
    }

    [Theory]
    [InlineData("01:02:03:04:05:06", "multicast")]
    [InlineData("zz:02:03:04:05:06", "hex")]
    [InlineData("02:03:04:05:06", "hex")]
    public void BadMacIsRefused(string mac, string why)
    {
        var error = Assert.Single(Errors("""{"name":"a","network_interfaces":{"net0":{"mac":"MAC"}}}""".Replace("MAC", mac, StringComparison.Ordinal)));
        Assert.Equal("network_interfaces[\"net0\"].mac", error.Attribute);
        Assert.Contains(why, error.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void VolumeIdsCannotEscapeThePool()
    {
        foreach (var id in new[] { "default/../x", "../etc/passwd", "/etc/passwd", "default/a/b", "default/.hidden" })
        {
            var error = Assert.Single(Errors("""{"name":"a","disks":{"scsi0":{"volume_id":"ID"}}}""".Replace("ID", id, StringComparison.Ordinal)));
            Assert.Equal("disks[\"scsi0\"].volume_id", error.Attribute);
        }
    }

    [Fact]
    public void CrossFieldRulesNameTheRightAttribute()
    {
        var errors = Errors("""
            {"name":"a","machine":"pc",
             "firmware":{"type":"bios","secure_boot":true},
             "disks":{"sata0":{"size_gib":1},"virtio0":{"size_gib":1,"ssd":true},"scsi0":{"volume_id":"default/v","size_gib":3}},
             "cdroms":{"scsi0":{}},
             "boot_order":["scsi0","net9"],
             "initrd":"/boot/initrd.img"}
            """);
        var attributes = errors.Select(e => e.Attribute).ToHashSet();
        Assert.Contains("firmware.secure_boot", attributes);
        Assert.Contains("disks[\"sata0\"]", attributes);
        Assert.Contains("disks[\"virtio0\"].ssd", attributes);
        Assert.Contains("disks[\"scsi0\"].size_gib", attributes);
        Assert.Contains("cdroms[\"scsi0\"]", attributes);
        Assert.Contains("boot_order[1]", attributes);
        Assert.Contains("initrd", attributes);
    }

    [Fact]
    public void InlineDiskNeedsASize() =>
        Assert.Equal("disks[\"virtio0\"].size_gib", Assert.Single(Errors("""{"name":"a","disks":{"virtio0":{}}}""")).Attribute);

    [Fact]
    public void DisksOnlyGrow()
    {
        var before = Parse("""{"name":"a","disks":{"scsi0":{"size_gib":8}}}""");
        var after = Parse("""{"name":"a","disks":{"scsi0":{"size_gib":4}}}""");
        Assert.Equal("disks[\"scsi0\"].size_gib", Assert.Single(after.ValidateUpdate(before)).Attribute);
        Assert.Empty(before.ValidateUpdate(after));
    }

    [Fact]
    public void DuplicateTagsAreRefused() =>
        Assert.Equal("tags[1]", Assert.Single(Errors("""{"name":"a","tags":["x","x"]}""")).Attribute);

    [Theory]
    [InlineData("eth0")]
    [InlineData("lo")]
    public void NetworksNeverTakeTheUplinkName(string name) =>
        Assert.Equal("name", Assert.Single(Validator.Validate(new NetworkSpec { Name = name })).Attribute);

    [Theory]
    [InlineData("10.0.0.1/24", true)]
    [InlineData("fd00::1/64", true)]
    [InlineData("10.0.0.1", false)]
    [InlineData("10.0.0.1/33", false)]
    public void NetworkAddressesAreCidr(string address, bool ok) =>
        Assert.Equal(ok, Validator.Validate(new NetworkSpec { Name = "kvmbr0", Address = address }).Count == 0);
}
