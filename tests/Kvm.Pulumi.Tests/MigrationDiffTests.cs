using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Tests.Harness;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// Diff of a host change through the real plugin process: with <c>migration.enabled</c> the VM is updated in place (the
/// provider migrates it), without it (or while the flag is unknown) it is replaced.
/// </summary>
public class MigrationDiffTests(ConfiguredPlugin fixture) : IClassFixture<ConfiguredPlugin>
{
    private const string VmToken = "kvm:index/vm:Vm";

    private static Struct Parse(string json) => StructCodecTests.Parse(json);

    [Fact]
    public async Task AHostChangeWithMigrationEnabledIsAnUpdateAndWithoutItAReplacement()
    {
        var outputs = Parse("""{"host":"lab-01","vmId":100,"name":"web","disks":{"scsi0":{"sizeGib":10}},"migration":{"enabled":true},"status":"running"}""");
        var inputs = Parse("""{"host":"lab-01","name":"web","disks":{"scsi0":{"sizeGib":10}},"migration":{"enabled":true}}""");

        var migrate = await fixture.Session.DiffAsync(VmToken, "web", "100", outputs, inputs,
            Parse("""{"host":"lab-02","name":"web","disks":{"scsi0":{"sizeGib":10}},"migration":{"enabled":true}}"""));
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffSome, migrate.Changes);
        Assert.Empty(migrate.Replaces);
        Assert.Equal(["host"], migrate.Diffs);
        Assert.Equal(PropertyDiff.Types.Kind.Update, migrate.DetailedDiff["host"].Kind);

        var replace = await fixture.Session.DiffAsync(VmToken, "web", "100", outputs, inputs,
            Parse("""{"host":"lab-02","name":"web","disks":{"scsi0":{"sizeGib":10}}}"""));
        Assert.Equal(["host"], replace.Replaces);
        Assert.Equal(PropertyDiff.Types.Kind.UpdateReplace, replace.DetailedDiff["host"].Kind);

        var disabled = await fixture.Session.DiffAsync(VmToken, "web", "100", outputs, inputs,
            Parse("""{"host":"lab-02","name":"web","disks":{"scsi0":{"sizeGib":10}},"migration":{"enabled":false}}"""));
        Assert.Contains("host", disabled.Replaces);

        var unknown = await fixture.Session.DiffAsync(VmToken, "web", "100", outputs, inputs,
            Parse($$$"""{"host":"lab-02","name":"web","disks":{"scsi0":{"sizeGib":10}},"migration":{"enabled":"{{{Kvm.Pulumi.Values.Sentinels.Unknown}}}"}}"""));
        Assert.Contains("host", unknown.Replaces);
    }
}
