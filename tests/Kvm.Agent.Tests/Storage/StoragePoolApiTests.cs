using System.Net;
using Kvm.Agent.Storage;
using Kvm.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kvm.Agent.Tests.Storage;

public sealed class StoragePoolApiTests : IAsyncLifetime
{
    private StorageHarness _h = null!;

    public async Task InitializeAsync() => _h = await StorageHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private HttpClient Client => _h.Client;

    [Fact]
    public async Task TheDefaultPoolIsBuiltInWithItsFileSystemFigures()
    {
        var pools = await (await Client.GetAsync("/v1/storage-pools")).ReadModelAsync(ModelJsonContext.Default.ListStoragePool, HttpStatusCode.OK);

        var pool = Assert.Single(pools);
        Assert.Equal(("default", "dir", _h.DefaultPool, true), (pool.Name, pool.Type, pool.Path, pool.Builtin!.Value));
        Assert.True(Directory.Exists(_h.DefaultPool));
        var drive = new DriveInfo(_h.DefaultPool);
        Assert.Equal(drive.TotalSize, pool.CapacityBytes);
        Assert.InRange(pool.AvailableBytes!.Value, 1, drive.TotalSize);
        await (await Client.DeleteAsync("/v1/storage-pools/default")).ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.InvalidState);
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"default","path":"{{_h.Dir.Sub("x")}}"}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
    }

    [Fact]
    public async Task APoolIsCreatedPersistedAndDeletedOnlyWhenEmpty()
    {
        var small = await _h.Dir.MountTmpfsAsync("fs", "8m");
        var path = Path.Combine(small, "pool");

        var created = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"fast","path":"{{path}}"}"""))
            .ReadModelAsync(ModelJsonContext.Default.StoragePool, HttpStatusCode.Created);
        Assert.Equal(("fast", null, path, false, 8L << 20), (created.Name, created.Type, created.Path, created.Builtin!.Value, created.CapacityBytes!.Value));
        Assert.True(Directory.Exists(path));
        Assert.True(File.Exists(Path.Combine(_h.Options.PoolDefinitionsDir, "fast.json")));
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"fast","path":"{{path}}"}"""))
            .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);

        // A restarted agent knows the pool from its definition.
        var reloaded = new StoragePools(_h.Options, _h.Agent.Services, NullLogger<StoragePools>.Instance);
        Assert.Equal(["default", "fast"], reloaded.All().Select(p => p.Name));
        Assert.Equal(path, reloaded.Find("fast")!.Path);

        var volume = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/volumes", """{"name":"d.qcow2","pool":"fast","size_gib":1}"""))
            .ReadModelAsync(ModelJsonContext.Default.Volume, HttpStatusCode.Created);
        Assert.Equal(Path.Combine(path, "d.qcow2"), volume.Path);
        var held = await (await Client.DeleteAsync("/v1/storage-pools/fast")).ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
        Assert.Contains("d.qcow2", held.Detail, StringComparison.Ordinal);

        await Client.DeleteAsync("/v1/volumes/fast/d.qcow2");
        _h.Usage.Add(101, "virtio0", "fast/gone.qcow2");
        await (await Client.DeleteAsync("/v1/storage-pools/fast")).ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
        _h.Usage.Clear();

        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsync("/v1/storage-pools/fast")).StatusCode);
        await (await Client.GetAsync("/v1/storage-pools/fast")).ReadProblemAsync(HttpStatusCode.NotFound, ProblemTypes.NotFound);
        Assert.False(File.Exists(Path.Combine(_h.Options.PoolDefinitionsDir, "fast.json")));
        Assert.True(Directory.Exists(path)); // the directory is the operator's: forgetting the pool keeps it
    }

    [Theory]
    [InlineData("relative/dir")]
    [InlineData("/etc")]
    [InlineData("/etc/kvm-pool")]
    [InlineData("/usr/lib/pool")]
    [InlineData("/")]
    [InlineData("/tmp")]
    [InlineData("/tmp/../etc/x")]
    [InlineData("/tmp//x")]
    [InlineData("/tmp/x/")]
    public async Task PoolsOnSystemOrUnnormalisedPathsAreRefused(string path)
    {
        var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"bad","path":"{{path}}"}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);

        Assert.Equal("path", Assert.Single(problem.Errors!).Attribute);
        Assert.Equal(["default"], _h.Get<StoragePools>().All().Select(p => p.Name));
    }

    [Fact]
    public async Task PoolsThatOverlapOrSitInTheDataDirectoryAreRefused()
    {
        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"a","path":"{{_h.Dir.Sub("a")}}"}"""))
            .ReadModelAsync(ModelJsonContext.Default.StoragePool, HttpStatusCode.Created);
        Directory.CreateSymbolicLink(_h.Dir.Sub("alias"), _h.Dir.Sub("a"));

        foreach (var path in new[] { _h.Dir.Sub("a", "inner"), _h.Dir.Sub("alias"), Path.Combine(_h.DefaultPool, "nested") })
            await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"b","path":"{{path}}"}"""))
                .ReadProblemAsync(HttpStatusCode.Conflict, ProblemTypes.Conflict);
        foreach (var path in new[] { _h.Options.DataDir, _h.Options.PoolDefinitionsDir, Path.Combine(_h.Options.DataDir, "pools") })
            await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"b","path":"{{path}}"}"""))
                .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);

        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"b","path":"{{Path.Combine(_h.Options.DataDir, "pools", "b")}}"}"""))
            .ReadModelAsync(ModelJsonContext.Default.StoragePool, HttpStatusCode.Created);
    }

    [Theory]
    [InlineData("""{"name":"Bad","path":"/srv/x"}""", "name")]
    [InlineData("""{"name":"../x","path":"/srv/x"}""", "name")]
    [InlineData("""{"name":"x","path":"/srv/x","type":"lvm"}""", "type")]
    [InlineData("""{"name":"x"}""", "path")]
    public async Task InvalidPoolSpecsAreRefusedWithAttributePaths(string body, string attribute)
    {
        var problem = await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", body))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);

        Assert.Equal(attribute, Assert.Single(problem.Errors!).Attribute);
        Assert.False(Directory.Exists("/srv/x"));
    }

    [Fact]
    public async Task APathThatIsAFileIsRefused()
    {
        var file = _h.Dir.Sub("file");
        await File.WriteAllTextAsync(file, "x");

        await (await Client.SendJsonAsync(HttpMethod.Post, "/v1/storage-pools", $$"""{"name":"f","path":"{{file}}"}"""))
            .ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
        await (await Client.GetAsync("/v1/storage-pools/..%2Fx")).ReadProblemAsync(HttpStatusCode.UnprocessableEntity, ProblemTypes.Validation);
    }
}
