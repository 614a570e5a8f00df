using System.Text.Json;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Model.Tests;

/// <summary><c>kvm_storage_pool</c> types: each takes its own settings, refuses the others' at their own attribute.</summary>
public sealed class StoragePoolValidationTests
{
    private static IReadOnlyList<ValidationError> Errors(string json) =>
        Validator.Validate(JsonSerializer.Deserialize<StoragePoolSpec>(json, ModelJson.Options)!);

    [Theory]
    [InlineData("""{"name":"local","path":"/srv/kvm"}""")]
    [InlineData("""{"name":"local","type":"dir","path":"/srv/kvm"}""")]
    [InlineData("""{"name":"thin","type":"lvm-thin","volume_group":"pve","thin_pool":"data"}""")]
    [InlineData("""{"name":"nas","type":"nfs","server":"nas.example.org","export":"/srv/vm"}""")]
    [InlineData("""{"name":"nas","type":"nfs","server":"10.0.0.5","export":"/srv/vm","mount_options":"vers=4.2,soft,timeo=600"}""")]
    [InlineData("""{"name":"nas","type":"nfs","server":"fd00::5","export":"/srv/vm"}""")]
    public void Each_type_is_valid_with_its_own_settings(string json) => Assert.Empty(Errors(json));

    [Theory]
    [InlineData("""{"name":"p","type":"lvm-thin","thin_pool":"data"}""", "volume_group", "is required for a pool of type \"lvm-thin\".")]
    [InlineData("""{"name":"p","type":"lvm-thin","volume_group":"pve"}""", "thin_pool", "is required for a pool of type \"lvm-thin\".")]
    [InlineData("""{"name":"p","type":"lvm-thin","volume_group":"pve","thin_pool":"data","path":"/srv"}""", "path", "does not apply to a pool of type \"lvm-thin\".")]
    [InlineData("""{"name":"p","type":"lvm-thin","volume_group":"pve","thin_pool":"data","server":"a"}""", "server", "does not apply to a pool of type \"lvm-thin\".")]
    [InlineData("""{"name":"p","type":"nfs","export":"/srv"}""", "server", "is required for a pool of type \"nfs\".")]
    [InlineData("""{"name":"p","type":"nfs","server":"a"}""", "export", "is required for a pool of type \"nfs\".")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"/srv","path":"/mnt/x"}""", "path",
        "does not apply to an nfs pool: the agent mounts the export at <data-dir>/pools/<name> (see host_path).")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"/srv","thin_pool":"data"}""", "thin_pool", "does not apply to a pool of type \"nfs\".")]
    [InlineData("""{"name":"p"}""", "path", "is required for a pool of type \"dir\".")]
    [InlineData("""{"name":"p","path":"/srv","mount_options":"soft"}""", "mount_options", "does not apply to a pool of type \"dir\".")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"/srv/../etc"}""", "export", "must not contain \".\" or \"..\" segments.")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"/srv","mount_options":"vers=4.2,exec"}""", "mount_options",
        "\"exec\" is not allowed: the agent mounts pools nosuid,nodev,noexec and manages the mount itself.")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"/srv","mount_options":"suid"}""", "mount_options",
        "\"suid\" is not allowed: the agent mounts pools nosuid,nodev,noexec and manages the mount itself.")]
    public void Settings_of_another_type_or_missing_ones_are_refused_at_their_attribute(string json, string attribute, string detail)
    {
        var error = Assert.Single(Errors(json));
        Assert.Equal((attribute, detail), (error.Attribute, error.Detail));
    }

    [Theory]
    [InlineData("""{"name":"p","type":"zfs","path":"/srv"}""", "type")]
    [InlineData("""{"name":"p","type":"lvm-thin","volume_group":"-vg","thin_pool":"data"}""", "volume_group")]
    [InlineData("""{"name":"p","type":"lvm-thin","volume_group":"vg","thin_pool":"a/b"}""", "thin_pool")]
    [InlineData("""{"name":"p","type":"nfs","server":"a b","export":"/srv"}""", "server")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"srv"}""", "export")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"/srv,ro"}""", "export")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"/srv","mount_options":"soft;reboot"}""", "mount_options")]
    [InlineData("""{"name":"p","type":"nfs","server":"a","export":"/srv","mount_options":"soft,,hard"}""", "mount_options")]
    public void Malformed_values_are_refused_by_their_pattern(string json, string attribute) =>
        Assert.Contains(Errors(json), e => e.Attribute == attribute);
}
