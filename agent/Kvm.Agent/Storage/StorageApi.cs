using Kvm.Model;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kvm.Agent.Storage;

/// <summary>HTTP surface of storage: <c>/v1/storage-pools</c> and <c>/v1/volumes</c>.</summary>
public static class StorageApi
{
    /// <summary>Maps the storage pool and volume endpoints; returns their group for conventions (auth).</summary>
    public static RouteGroupBuilder MapStorage(this IEndpointRouteBuilder routes)
    {
        // Load the pool definitions and make the default pool's directory now, not at the first request.
        var storagePools = routes.ServiceProvider.GetRequiredService<StoragePools>();
        // nfs pools are mounted again in the background: an unreachable server must not hold up the agent's start.
        _ = Task.Run(() => storagePools.MountAllAsync(CancellationToken.None));
        var group = routes.MapGroup("");
        var pools = group.MapGroup("/v1/storage-pools");
        pools.MapGet("", ListPools);
        pools.MapPost("", CreatePool);
        pools.MapGet("/{name}", GetPool);
        pools.MapDelete("/{name}", DeletePool);
        var volumes = group.MapGroup("/v1/volumes");
        volumes.MapGet("", ListVolumes);
        volumes.MapPost("", CreateVolume);
        volumes.MapGet("/{pool}/{name}", GetVolume);
        volumes.MapPut("/{pool}/{name}", UpdateVolume);
        volumes.MapDelete("/{pool}/{name}", DeleteVolume);
        return group;
    }

    /// <summary>GET /v1/storage-pools.</summary>
    public static async Task<JsonHttpResult<List<StoragePool>>> ListPools(StoragePools pools, CancellationToken cancellationToken)
    {
        var list = new List<StoragePool>();
        foreach (var pool in pools.All())
            list.Add(await pools.DescribeAsync(pool, cancellationToken));
        return TypedResults.Json(list, ModelJsonContext.Default.ListStoragePool);
    }

    /// <summary>GET /v1/storage-pools/{name}.</summary>
    public static async Task<JsonHttpResult<StoragePool>> GetPool(string name, StoragePools pools, CancellationToken cancellationToken)
    {
        StoragePools.CheckName(name);
        var pool = pools.Find(name) ?? throw Problems.AgentProblemException.NotFound($"No storage pool named \"{name}\".");
        return TypedResults.Json(await pools.DescribeAsync(pool, cancellationToken), ModelJsonContext.Default.StoragePool);
    }

    /// <summary>POST /v1/storage-pools.</summary>
    public static async Task<JsonHttpResult<StoragePool>> CreatePool(HttpContext context, StoragePools pools)
    {
        var spec = await ModelHttp.ReadAsync(context.Request, ModelJsonContext.Default.StoragePoolSpec, context.RequestAborted);
        var pool = await pools.CreateAsync(spec, context.RequestAborted);
        context.Response.Headers.Location = $"/v1/storage-pools/{pool.Name}";
        return TypedResults.Json(pool, ModelJsonContext.Default.StoragePool, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>DELETE /v1/storage-pools/{name}.</summary>
    public static async Task<NoContent> DeletePool(string name, StoragePools pools, CancellationToken cancellationToken)
    {
        await pools.DeleteAsync(name, cancellationToken);
        return TypedResults.NoContent();
    }

    /// <summary>GET /v1/volumes[?pool=].</summary>
    public static async Task<JsonHttpResult<List<Volume>>> ListVolumes(string? pool, Volumes volumes, CancellationToken cancellationToken) =>
        TypedResults.Json(await volumes.ListAsync(pool, cancellationToken), ModelJsonContext.Default.ListVolume);

    /// <summary>GET /v1/volumes/{pool}/{name}.</summary>
    public static async Task<JsonHttpResult<Volume>> GetVolume(string pool, string name, HttpResponse response, Volumes volumes, CancellationToken cancellationToken)
    {
        var (volume, etag) = await volumes.GetAsync(pool, name, cancellationToken);
        response.Headers.ETag = etag;
        return TypedResults.Json(volume, ModelJsonContext.Default.Volume);
    }

    /// <summary>POST /v1/volumes.</summary>
    public static async Task<JsonHttpResult<Volume>> CreateVolume(HttpContext context, Volumes volumes)
    {
        var spec = await ModelHttp.ReadAsync(context.Request, ModelJsonContext.Default.VolumeSpec, context.RequestAborted);
        var volume = await volumes.CreateAsync(spec, context.RequestAborted);
        context.Response.Headers.Location = $"/v1/volumes/{volume.VolumeId}";
        return TypedResults.Json(volume, ModelJsonContext.Default.Volume, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>PUT /v1/volumes/{pool}/{name}: grows in place; other changes need a new volume.</summary>
    public static async Task<JsonHttpResult<Volume>> UpdateVolume(string pool, string name, HttpContext context, Volumes volumes)
    {
        var spec = await ModelHttp.ReadAsync(context.Request, ModelJsonContext.Default.VolumeSpec, context.RequestAborted);
        var volume = await volumes.UpdateAsync(pool, name, spec, ModelHttp.IfMatch(context.Request), context.RequestAborted);
        return TypedResults.Json(volume, ModelJsonContext.Default.Volume);
    }

    /// <summary>DELETE /v1/volumes/{pool}/{name}.</summary>
    public static async Task<NoContent> DeleteVolume(string pool, string name, HttpRequest request, Volumes volumes, CancellationToken cancellationToken)
    {
        await volumes.DeleteAsync(pool, name, ModelHttp.IfMatch(request), cancellationToken);
        return TypedResults.NoContent();
    }
}
