using System.Net;
using Kvm.Model;

namespace Kvm.Agent.Tests.Storage;

public sealed class VolumeApiTests : IAsyncLifetime
{
    private const long GiB = 1L << 30;
    private StorageHarness _h = null!;

    public async Task InitializeAsync() => _h = await StorageHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private HttpClient Client => _h.Client;

    [Fact]
    public async Task AVolumeIsCreatedReadGrownAndDeleted()
    {
        var created = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"data.qcow2","size_gib":1}"""))
            .ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.Created);
        Assert.Equal("default/data.qcow2", created.VolumeId);
        Assert.Equal(Path.Combine(_h.DefaultPool, "data.qcow2"), created.Path);
        Assert.Equal(GiB, created.CapacityBytes);
        Assert.Null(created.Pool); // read back what the user set
        Assert.Null(created.Format);
        Assert.Empty(created.AttachedTo!);

        var get = await Client.GetAsync("/v1/volumes/default/data.qcow2");
        var etag = get.Headers.ETag?.Tag;
        Assert.NotNull(etag);
        var read = await get.ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.OK);
        Assert.Equal(1, read.SizeGib);

        var grown = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/volumes/default/data.qcow2", """{"name":"data.qcow2","size_gib":3}""", etag))
            .ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.OK);
        Assert.Equal(3, grown.SizeGib);
        Assert.Equal(3 * GiB, grown.CapacityBytes);
        var result = await _h.Runner.RunAsync(["qemu-img", "info", "--output=json", created.Path!], TimeSpan.FromSeconds(10));
        Assert.Contains($"\"virtual-size\": {3 * GiB}", result.StdOut, StringComparison.Ordinal);
        var newEtag = (await Client.GetAsync("/v1/volumes/default/data.qcow2")).Headers.ETag?.Tag;
        Assert.NotEqual(etag, newEtag);

        var list = await (await Client.GetAsync("/v1/volumes?pool=default")).ReadModelAsync(ModelJsonContext.Default.ListVolume, HttpStatusCode.OK);
        Assert.Equal(["default/data.qcow2"], list.Select(v => v.VolumeId));

        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/volumes/default/data.qcow2")).StatusCode);
        Assert.False(File.Exists(created.Path));
        await (await Client.GetAsync("/v1/volumes/default/data.qcow2")).ReadProblemAsync(HttpStatusCode.NotFound, ProblemTypes.NotFound);
        Assert.False(Directory.Exists(Path.Combine(_h.Options.VolumeDefinitionsDir, "default")) &&
            Directory.EnumerateFiles(Path.Combine(_h.Options.VolumeDefinitionsDir, "default")).Any());
    }

    [Fact]
    public async Task SettingsReadBackAsTheUserSetThem()
    {
        var created = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes",
            """{"name":"raw.img","pool":"default","size_gib":1,"format":"raw","preallocation":"falloc"}"""))
            .ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.Created);

        Assert.Equal(("raw.img", "default", 1L, "raw", "falloc"), (created.Name, created.Pool, created.SizeGib!.Value, created.Format, created.Preallocation));
        Assert.True(created.AllocationBytes >= GiB);
    }

    [Fact]
    public async Task InvalidSpecsAreRefusedWithAttributePaths()
    {
        var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"../escape","size_gib":0,"format":"vdi"}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);

        Assert.Equal(["format", "name", "size_gib"], problem.Errors!.Select(e => e.Attribute).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_h.DefaultPool));
        Assert.False(File.Exists(Path.Combine(_h.Dir.Path, "data", "pools", "escape")));
    }

    [Theory]
    [InlineData("""{"name":"x.raw","size_gib":1,"format":"raw","preallocation":"metadata"}""", "preallocation")]
    [InlineData("""{"name":"x.qcow2","size_gib":1,"pool":"nope"}""", "pool")]
    [InlineData("""{"name":"vm-100-disk-scsi0.qcow2","size_gib":1}""", "name")]
    public async Task CreateRefusesWhatCannotBeCreated(string body, string attribute)
    {
        var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", body))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);

        Assert.Equal(attribute, Assert.Single(problem.Errors!).Attribute);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_h.DefaultPool));
    }

    [Theory]
    [InlineData("""{"name":"a.qcow2","size_gib":1,"unknown":1}""")]
    [InlineData("""{"name":"a.qcow2","size_gib":"1"}""")]
    [InlineData("not json")]
    public async Task MalformedBodiesAre400(string body)
    {
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", body)).ReadProblemAsync(HttpStatusCode.BadRequest, ProblemTypes.MalformedBody);
    }

    [Fact]
    public async Task CreatingAnExistingNameIs409AndLeavesTheFileAlone()
    {
        var path = Path.Combine(_h.DefaultPool, "taken.qcow2");
        await File.WriteAllTextAsync(path, "operator data");
        var mtime = File.GetLastWriteTimeUtc(path);

        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"taken.qcow2","size_gib":1}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);

        Assert.Equal("operator data", await File.ReadAllTextAsync(path));
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(path));
    }

    [Fact]
    public async Task ShrinkingIsRefusedAndReplaceChangesNeedANewVolume()
    {
        await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"v.qcow2","size_gib":2}""");

        var shrink = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/volumes/default/v.qcow2", """{"name":"v.qcow2","size_gib":1}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        Assert.Equal("size_gib", Assert.Single(shrink.Errors!).Attribute);

        var format = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/volumes/default/v.qcow2", """{"name":"v.qcow2","size_gib":2,"format":"raw"}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.RequiresReplacement);
        Assert.Equal("format", Assert.Single(format.Errors!).Attribute);

        var rename = await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/volumes/default/v.qcow2", """{"name":"w.qcow2","size_gib":2}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.RequiresReplacement);
        Assert.Equal("name", Assert.Single(rename.Errors!).Attribute);

        var volume = await (await Client.GetAsync("/v1/volumes/default/v.qcow2")).ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.OK);
        Assert.Equal((2L, 2 * GiB), (volume.SizeGib!.Value, volume.CapacityBytes!.Value));
    }

    [Fact]
    public async Task AStaleETagIsRefused()
    {
        await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"v.qcow2","size_gib":1}""");

        await (await Client.SendJsonAsync(HttpMethod.Put, "/v1/volumes/default/v.qcow2", """{"name":"v.qcow2","size_gib":2}""", "\"0000\""))
            .ReadProblemAsync(HttpStatusCode.PreconditionFailed, ProblemTypes.StaleEtag);

        var volume = await (await Client.GetAsync("/v1/volumes/default/v.qcow2")).ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.OK);
        Assert.Equal(GiB, volume.CapacityBytes);
    }

    [Fact]
    public async Task AVolumeInUseCannotBeDeletedAndShowsItsUsers()
    {
        await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"shared.qcow2","size_gib":1}""");
        _h.Usage.Add(100, "scsi1", "default/shared.qcow2");
        _h.Usage.Add(100, "scsi0", "default/other.qcow2");

        var volume = await (await Client.GetAsync("/v1/volumes/default/shared.qcow2")).ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.OK);
        Assert.Equal(["100/scsi1"], volume.AttachedTo!);
        var problem = await (await Client.DeleteAsync("/v1/volumes/default/shared.qcow2")).ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
        Assert.Contains("100/scsi1", problem.Detail, StringComparison.Ordinal);
        Assert.True(File.Exists(volume.Path));

        _h.Usage.Clear();
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/volumes/default/shared.qcow2")).StatusCode);
    }

    [Fact]
    public async Task FilesPutInAPoolByAnOperatorAreVolumesButInlineDisksAndTempFilesAreNot()
    {
        var iso = Path.Combine(_h.DefaultPool, "installer.iso");
        var isoBytes = new byte[3 * 1024 * 1024];
        isoBytes[32769] = (byte)'C'; // not a real ISO: the agent must not probe .iso files anyway
        await File.WriteAllBytesAsync(iso, isoBytes);
        await _h.Runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", Path.Combine(_h.DefaultPool, "copied.qcow2"), "2G");
        await _h.Runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", Path.Combine(_h.DefaultPool, "vm-100-disk-scsi0.qcow2"), "1G");
        await File.WriteAllTextAsync(Path.Combine(_h.DefaultPool, ".kvm-tmp-0123456789ab-half.qcow2"), "");
        Directory.CreateDirectory(Path.Combine(_h.DefaultPool, "subdir"));

        var list = await (await Client.GetAsync("/v1/volumes")).ReadModelAsync(ModelJsonContext.Default.ListVolume, HttpStatusCode.OK);

        Assert.Equal(["default/copied.qcow2", "default/installer.iso"], list.Select(v => v.VolumeId));
        var copied = list[0];
        Assert.Equal(("qcow2", 2L, 2 * GiB), (copied.Format, copied.SizeGib!.Value, copied.CapacityBytes!.Value));
        var installer = list[1];
        Assert.Equal(("raw", 1L, (long)isoBytes.Length), (installer.Format, installer.SizeGib!.Value, installer.CapacityBytes!.Value));
        await (await Client.GetAsync("/v1/volumes/default/vm-100-disk-scsi0.qcow2")).ReadProblemAsync(HttpStatusCode.NotFound, ProblemTypes.NotFound);
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/volumes/default/installer.iso")).StatusCode);
        Assert.False(File.Exists(iso));
    }

    [Fact]
    public async Task ALinkThatLeavesThePoolIsNeitherListedNorFollowed()
    {
        var outside = _h.Dir.Sub("outside.qcow2");
        await _h.Runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", outside, "1G");
        File.CreateSymbolicLink(Path.Combine(_h.DefaultPool, "escape.qcow2"), outside);
        File.CreateSymbolicLink(Path.Combine(_h.DefaultPool, "passwd"), "/etc/passwd");
        await _h.Runner.RunCheckedAsync("qemu-img", "create", "-q", "-f", "qcow2", Path.Combine(_h.DefaultPool, "inside.qcow2"), "1G");
        File.CreateSymbolicLink(Path.Combine(_h.DefaultPool, "alias.qcow2"), Path.Combine(_h.DefaultPool, "inside.qcow2"));

        var list = await (await Client.GetAsync("/v1/volumes")).ReadModelAsync(ModelJsonContext.Default.ListVolume, HttpStatusCode.OK);
        Assert.Equal(["default/alias.qcow2", "default/inside.qcow2"], list.Select(v => v.VolumeId));

        foreach (var name in new[] { "escape.qcow2", "passwd" })
        {
            await (await Client.GetAsync($"/v1/volumes/default/{name}")).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
            await (await Client.DeleteAsync($"/v1/volumes/default/{name}")).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
            await (await Client.SendJsonAsync(HttpMethod.Put, $"/v1/volumes/default/{name}", $$"""{"name":"{{name}}","size_gib":5}"""))
                .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        }
        Assert.True(File.Exists(outside));
        var info = await _h.Runner.RunAsync(["qemu-img", "info", "--output=json", outside], TimeSpan.FromSeconds(10));
        Assert.Contains($"\"virtual-size\": {GiB}", info.StdOut, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/v1/volumes/default/..%2F..%2Fetc%2Fpasswd")]
    [InlineData("/v1/volumes/default/.hidden")]
    [InlineData("/v1/volumes/..%2Fdefault/x.qcow2")]
    [InlineData("/v1/volumes/Default/x.qcow2")]
    public async Task NamesOutsideTheModelsRulesAreRefused(string url)
    {
        await (await Client.GetAsync(url)).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        await (await Client.DeleteAsync(url)).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        await (await Client.SendJsonAsync(HttpMethod.Put, url, """{"name":"x.qcow2","size_gib":1}""")).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
    }

    [Fact]
    public async Task ListingAPoolThatIsInvalidOrUnknownIsRefused()
    {
        await (await Client.GetAsync("/v1/volumes?pool=..%2F..")).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        await (await Client.GetAsync("/v1/volumes?pool=nope")).ReadProblemAsync(HttpStatusCode.NotFound, ProblemTypes.NotFound);
    }

    [Fact]
    public async Task APreallocatedVolumeThatDoesNotFitIs507AndLeavesNoFile()
    {
        var small = await _h.Dir.MountTmpfsAsync("small", "8m");
        var poolDir = Path.Combine(small, "pool");
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"small","path":"{{poolDir}}"}"""))
            .ReadModelAsync(ModelJsonContext.Default.StoragePool, HttpStatusCode.Created);

        var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"big.raw","pool":"small","size_gib":1,"format":"raw","preallocation":"full"}"""))
            .ReadProblemAsync((HttpStatusCode)507, ProblemTypes.NoSpace);

        Assert.Contains("big.raw", problem.Detail, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(poolDir));
        // A thin image overcommits by design and is created.
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"thin.qcow2","pool":"small","size_gib":1}"""))
            .ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.Created);
    }
}
