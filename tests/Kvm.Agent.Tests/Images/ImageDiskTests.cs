using System.Net;
using System.Security.Cryptography;
using Kvm.Agent.Host;
using Kvm.Agent.Tests.Storage;
using Kvm.Agent.Tests.Support;
using Kvm.Client;
using Kvm.Model;
using TestAgent = Kvm.Agent.Tests.Support.TestAgent;

namespace Kvm.Agent.Tests.Images;

/// <summary>VM disks made from an image (full copy and linked clone), run by real QEMU under TCG.</summary>
[Collection("qemu")]
public sealed class ImageDiskTests : IAsyncLifetime
{
    private const long GiB = 1L << 30;
    private readonly TestCommandRunner _runner = new();
    private TestAgent _agent = null!;
    private TempDir _dir = null!;
    private Image _image = null!;

    public async Task InitializeAsync()
    {
        _agent = await TestAgent.StartAsync();
        _dir = new TempDir(_runner);
        await _runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", _dir.Sub("base.qcow2"), "2G");
        _image = (await _agent.Client.CreateImageAsync(new ImageSpec { Name = "base.qcow2", SourcePath = _dir.Sub("base.qcow2") })).Value;
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _dir.DisposeAsync();
    }

    private KvmClient Client => _agent.Client;

    private static VmSpec WithDisk(DiskSpec disk)
    {
        var spec = Specs.Running();
        spec.Disks = new() { ["virtio0"] = disk };
        return spec;
    }

    private async Task<ImageInfoJson> InfoAsync(string path)
    {
        var result = await _runner.RunAsync(["qemu-img", "info", "-U", "--output=json", path], TimeSpan.FromSeconds(10));
        Assert.True(result.Ok, result.StdErr);
        using var json = System.Text.Json.JsonDocument.Parse(result.StdOut);
        var root = json.RootElement;
        return new ImageInfoJson(root.GetProperty("format").GetString()!, root.GetProperty("virtual-size").GetInt64(),
            root.TryGetProperty("backing-filename", out var backing) ? backing.GetString() : null);
    }

    private sealed record ImageInfoJson(string Format, long VirtualSize, string? BackingFile);

    private string DiskPath(long vmId) => Path.Combine(_agent.DataDir, "pools", "default", $"vm-{vmId}-disk-virtio0.qcow2");

    [Fact]
    public async Task ALinkedCloneAndAFullCopyRunAndTheImageIsDeletableOnlyWithoutLinkedClones()
    {
        var imageBytes = SHA256.HashData(await File.ReadAllBytesAsync(_image.Path!));
        var linked = (await Client.CreateVmAsync(WithDisk(new DiskSpec { ImageId = _image.ImageId, LinkedClone = true, SizeGib = 3 }))).Value;
        var copy = (await Client.CreateVmAsync(WithDisk(new DiskSpec { ImageId = _image.ImageId }))).Value;

        Assert.Equal("running", linked.Status);
        Assert.Equal("running", copy.Status);
        var overlay = await InfoAsync(DiskPath(linked.VmId!.Value));
        Assert.Equal(("qcow2", 3 * GiB, _image.Path), (overlay.Format, overlay.VirtualSize, overlay.BackingFile));
        var full = await InfoAsync(DiskPath(copy.VmId!.Value));
        Assert.Equal(("qcow2", 2 * GiB, (string?)null), (full.Format, full.VirtualSize, full.BackingFile));
        Assert.Equal([$"{linked.VmId}/virtio0"], (await Client.GetImageAsync("default", "base.qcow2")).Value.UsedBy);

        var refused = await Assert.ThrowsAsync<KvmApiException>(() => Client.DeleteImageAsync("default", "base.qcow2"));
        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Contains($"{linked.VmId}/virtio0", refused.Detail, StringComparison.Ordinal);
        Assert.True(File.Exists(_image.Path));

        await Client.DeleteVmAsync(linked.VmId.Value, RunningVmDeletion.Force);
        Assert.False(File.Exists(DiskPath(linked.VmId.Value)));
        // The guest wrote through its overlay only: the base image is as imported.
        Assert.Equal(imageBytes, SHA256.HashData(await File.ReadAllBytesAsync(_image.Path!)));
        await Client.DeleteImageAsync("default", "base.qcow2");
        Assert.False(File.Exists(_image.Path));
        // A full copy does not depend on its image.
        Assert.Equal("running", (await Client.GetVmAsync(copy.VmId.Value)).Value.Status);
        Assert.Equal("stopped", (await Client.StopVmAsync(copy.VmId.Value)).Status);
        Assert.Equal("running", (await Client.StartVmAsync(copy.VmId.Value)).Status);
    }

    [Fact]
    public async Task ADiskSmallerThanItsImageIsRefusedAtItsSize()
    {
        var e = await Assert.ThrowsAsync<KvmApiException>(() => Client.CreateVmAsync(WithDisk(new DiskSpec { ImageId = _image.ImageId, SizeGib = 1 })));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Status);
        Assert.Equal(["disks[\"virtio0\"].size_gib"], e.Errors.Select(x => x.Attribute));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_agent.DataDir, "pools", "default")));
    }

    [Theory]
    [InlineData("""{"image_id":"default/nothing.qcow2"}""", "disks[\"virtio0\"].image_id", HttpStatusCode.UnprocessableEntity)]
    [InlineData("""{"image_id":"default/base.qcow2","volume_id":"default/x.qcow2"}""", "disks[\"virtio0\"].image_id", HttpStatusCode.UnprocessableEntity)]
    [InlineData("""{"size_gib":1,"linked_clone":true}""", "disks[\"virtio0\"].linked_clone", HttpStatusCode.UnprocessableEntity)]
    [InlineData("""{"image_id":"default/base.qcow2","linked_clone":true,"format":"raw"}""", "disks[\"virtio0\"].linked_clone", HttpStatusCode.UnprocessableEntity)]
    [InlineData("""{"image_id":"default/../../x"}""", "disks[\"virtio0\"].image_id", HttpStatusCode.UnprocessableEntity)]
    public async Task DisksThatCannotComeFromAnImageAreRefused(string disk, string attribute, HttpStatusCode status)
    {
        using var http = _agent.RawClient();
        var body = "{\"name\":\"" + Specs.UniqueName() + "\",\"power_state\":\"stopped\",\"memory\":{\"size_mib\":64},\"disks\":{\"virtio0\":" + disk + "}}";
        var response = await http.SendJsonAsync(HttpMethod.Post, "/v1/vms", body);
        var problem = await response.ReadProblemAsync(status, ProblemTypes.Validation);

        Assert.Contains(attribute, problem.Errors!.Select(x => x.Attribute));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_agent.DataDir, "pools", "default")));
    }

    [Fact]
    public async Task TheImageOfALinkedCloneIsOpenedReadOnlyByQemu()
    {
        var vm = (await Client.CreateVmAsync(WithDisk(new DiskSpec { ImageId = _image.ImageId, LinkedClone = true }))).Value;
        var pid = (int)vm.Pid!.Value;

        var fds = Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd")
            .Select(fd => (Fd: Path.GetFileName(fd), Target: new FileInfo(fd).LinkTarget))
            .Where(f => f.Target == _image.Path).ToList();
        Assert.NotEmpty(fds);
        foreach (var (fd, _) in fds)
        {
            var flags = File.ReadAllLines($"/proc/{pid}/fdinfo/{fd}").Single(l => l.StartsWith("flags:", StringComparison.Ordinal));
            // O_ACCMODE bits 0: O_RDONLY.
            Assert.Equal(0, Convert.ToInt32(flags["flags:".Length..].Trim(), 8) & 3);
        }
        Assert.True(ProcessTable.IsAlive(pid));
    }
}
