using Kvm.Agent.Http;
using Kvm.Agent.Vms;
using Kvm.Model;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Kvm.Agent.Snapshots;

/// <summary>HTTP surface of snapshots: <c>/v1/vms/{vm_id}/snapshots</c> and the rollback action.</summary>
public static class SnapshotApi
{
    /// <summary>Registers <see cref="VmSnapshots"/> (needs the VM feature; uses storage and the guest agents when registered).</summary>
    public static IServiceCollection AddSnapshots(this IServiceCollection services)
    {
        services.AddSingleton<SnapshotBook>();
        services.AddSingleton<SnapshotFiles>();
        services.AddSingleton<VmSnapshots>();
        return services;
    }

    /// <summary>Maps the snapshot endpoints.</summary>
    public static IEndpointRouteBuilder MapSnapshots(this IEndpointRouteBuilder app)
    {
        var snapshots = app.MapGroup("/v1/vms/{vm_id:long}/snapshots");
        snapshots.MapGet("", ListSnapshots);
        snapshots.MapPost("", CreateSnapshot);
        snapshots.MapGet("/{name}", GetSnapshot);
        snapshots.MapPut("/{name}", UpdateSnapshot);
        snapshots.MapDelete("/{name}", DeleteSnapshot);
        snapshots.MapPost("/{name}/rollback", RollbackSnapshot);
        return app;
    }

    private static JsonHttpResult<List<Snapshot>> ListSnapshots([FromRoute(Name = "vm_id")] long vmId, VmSnapshots snapshots) =>
        TypedResults.Json(snapshots.List(vmId), ModelJsonContext.Default.ListSnapshot);

    private static JsonHttpResult<Snapshot> GetSnapshot([FromRoute(Name = "vm_id")] long vmId, string name, VmSnapshots snapshots) =>
        TypedResults.Json(snapshots.Get(vmId, name), ModelJsonContext.Default.Snapshot);

    /// <summary>POST: 201 when taken, 200 when a snapshot of that name and kind exists already.</summary>
    private static async Task<JsonHttpResult<Snapshot>> CreateSnapshot([FromRoute(Name = "vm_id")] long vmId, HttpRequest request, VmSnapshots snapshots, CancellationToken cancellationToken)
    {
        var spec = await JsonBody.ReadAsync(request, ModelJsonContext.Default.SnapshotSpec);
        var outcome = await snapshots.CreateAsync(vmId, spec, cancellationToken);
        if (outcome.Created)
            request.HttpContext.Response.Headers.Location = $"/v1/vms/{vmId}/snapshots/{outcome.Snapshot.Name}";
        return TypedResults.Json(outcome.Snapshot, ModelJsonContext.Default.Snapshot,
            statusCode: outcome.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK);
    }

    private static async Task<JsonHttpResult<Snapshot>> UpdateSnapshot([FromRoute(Name = "vm_id")] long vmId, string name, HttpRequest request, VmSnapshots snapshots, CancellationToken cancellationToken)
    {
        var spec = await JsonBody.ReadAsync(request, ModelJsonContext.Default.SnapshotSpec);
        return TypedResults.Json(await snapshots.UpdateAsync(vmId, name, spec, cancellationToken), ModelJsonContext.Default.Snapshot);
    }

    private static async Task<NoContent> DeleteSnapshot([FromRoute(Name = "vm_id")] long vmId, string name, VmSnapshots snapshots, CancellationToken cancellationToken)
    {
        await snapshots.DeleteAsync(vmId, name, cancellationToken);
        return TypedResults.NoContent();
    }

    /// <summary>POST …/rollback[?start=true|false]: the VM read back.</summary>
    private static async Task<Ok<Vm>> RollbackSnapshot([FromRoute(Name = "vm_id")] long vmId, string name, [FromQuery] bool? start, VmSnapshots snapshots, CancellationToken cancellationToken) =>
        TypedResults.Ok(await snapshots.RollbackAsync(vmId, name, start, cancellationToken));
}
