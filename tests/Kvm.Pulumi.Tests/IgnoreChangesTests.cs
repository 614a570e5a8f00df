using Google.Protobuf.WellKnownTypes;
using Kvm.Model.Schema;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Provider;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Tests;

/// <summary>The <c>ignoreChanges</c> option: the provider's Diff and the harness's copy of the engine's processIgnoreChanges.</summary>
public class IgnoreChangesTests
{
    private static Struct Parse(string json) => StructCodecTests.Parse(json);

    [Theory]
    [InlineData("description", "description", true)]
    [InlineData("disks[\"scsi0\"].sizeGib", "disks[\"scsi0\"].size_gib", true)]
    [InlineData("disks.scsi0.sizeGib", "disks[\"scsi0\"].size_gib", true)]
    [InlineData("disks[\"scsi0\"]", "disks[\"scsi0\"].size_gib", true)]
    [InlineData("disks[*].sizeGib", "disks[\"virtio1\"].size_gib", true)]
    [InlineData("disks[\"scsi1\"]", "disks[\"scsi0\"].size_gib", false)]
    [InlineData("disks[\"scsi0\"].sizeGib", "disks[\"scsi0\"]", false)]
    [InlineData("memory", "memory_backing", false)]
    [InlineData("tags[1]", "tags[1]", true)]
    [InlineData("disks[\"unclosed", "disks", false)]
    public void PathsCoverThemselvesAndWhatLiesBelow(string ignored, string changed, bool covered) =>
        Assert.Equal(covered, IgnoredPaths.Parse([ignored]).Covers(AttrPath.Parse(changed)));

    [Fact]
    public void DiffLeavesOutIgnoredChangesEvenWhenTheStateDrifted()
    {
        // The last read state has a description and memory the inputs never had (drift not yet in the inputs).
        var request = new DiffRequest
        {
            Urn = EngineSession.Urn("kvm:index/vm:Vm", "web"), Type = "kvm:index/vm:Vm", Id = "101",
            Olds = Parse("""{"name":"web","vmId":101,"description":"drifted","memory":{"sizeMib":512},"disks":{"scsi0":{"sizeGib":2}}}"""),
            News = Parse("""{"name":"web","description":"mine","memory":{"sizeMib":512},"disks":{"scsi0":{"sizeGib":1,"format":"raw"}}}"""),
        };
        var all = ResourceProviderService.Diff(request);
        Assert.Equal(["description", "disks"], all.Diffs.Order(StringComparer.Ordinal));
        Assert.NotEmpty(all.Replaces);

        request.IgnoreChanges.Add("description");
        request.IgnoreChanges.Add("disks[\"scsi0\"].format");
        var ignored = ResourceProviderService.Diff(request);
        Assert.Equal(["disks"], ignored.Diffs);
        Assert.Equal(["disks[\"scsi0\"].sizeGib"], ignored.DetailedDiff.Keys);
        Assert.Empty(ignored.Replaces);
        Assert.False(ignored.DeleteBeforeReplace);
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffSome, ignored.Changes);

        request.IgnoreChanges.Add("disks");
        Assert.Equal(DiffResponse.Types.DiffChanges.DiffNone, ResourceProviderService.Diff(request).Changes);
    }

    [Fact]
    public void TheEngineResetsIgnoredInputsToTheOldOnesBeforeCheck()
    {
        var news = Parse("""{"name":"web","description":"new","disks":{"scsi0":{"sizeGib":3}},"tags":["x"]}""");
        var olds = Parse("""{"name":"web","description":"old","disks":{"scsi0":{"sizeGib":1}}}""");
        var result = Deployment.ProcessIgnoreChanges(news, olds, ["description", "disks[\"scsi0\"].sizeGib", "tags"]);
        Assert.Equal(Parse("""{"name":"web","description":"old","disks":{"scsi0":{"sizeGib":1}}}"""), result);
        Assert.Equal("new", news.Fields["description"].StringValue);
    }
}
