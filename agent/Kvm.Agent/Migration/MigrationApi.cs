using System.Net;
using Kvm.Agent.Http;
using Kvm.Agent.Problems;
using Kvm.Model;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Kvm.Agent.Migration;

/// <summary>
/// Migration between agents. Source: <c>/v1/vms/{vm_id}/migration/{prepare|send|finish|cancel}</c>. Target:
/// <c>/v1/migrations/incoming</c> (create), <c>…/{vm_id}/complete</c>, <c>DELETE …/{vm_id}</c> (abort).
/// Kvm.Client's orchestrator calls them in order and cleans up on any failure.
/// </summary>
public static class MigrationApi
{
    /// <summary>Services of the feature.</summary>
    public static IServiceCollection AddMigration(this IServiceCollection services)
    {
        services.AddSingleton<Migrations>();
        return services;
    }

    /// <summary>Maps the migration endpoints.</summary>
    public static IEndpointRouteBuilder MapMigration(this IEndpointRouteBuilder app)
    {
        var source = app.MapGroup("/v1/vms/{vm_id:long}/migration");
        source.MapPost("/prepare", Prepare);
        source.MapPost("/send", Send);
        source.MapPost("/finish", Finish);
        source.MapPost("/cancel", Cancel);
        var incoming = app.MapGroup("/v1/migrations/incoming");
        incoming.MapPost("", CreateIncoming);
        incoming.MapPost("/{vm_id:long}/complete", Complete);
        incoming.MapDelete("/{vm_id:long}", Abort);
        return app;
    }

    private static async Task<Ok<MigrationPlan>> Prepare([FromRoute(Name = "vm_id")] long vmId, HttpRequest request, Migrations migrations, CancellationToken cancellationToken)
    {
        var body = request.ContentLength is null or 0 && request.ContentType is null
            ? new MigrationPrepareRequest()
            : await JsonBody.ReadAsync(request, MigrationJsonContext.Default.MigrationPrepareRequest);
        return TypedResults.Ok(await migrations.PrepareAsync(vmId, body.Online, cancellationToken));
    }

    private static async Task<Ok<MigrationSendResult>> Send([FromRoute(Name = "vm_id")] long vmId, HttpRequest request, Migrations migrations, CancellationToken cancellationToken)
    {
        var body = await JsonBody.ReadAsync(request, MigrationJsonContext.Default.MigrationSendRequest);
        return TypedResults.Ok(await migrations.SendAsync(vmId, body, cancellationToken));
    }

    private static async Task<NoContent> Finish([FromRoute(Name = "vm_id")] long vmId, Migrations migrations, CancellationToken cancellationToken)
    {
        await migrations.FinishAsync(vmId, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> Cancel([FromRoute(Name = "vm_id")] long vmId, Migrations migrations, CancellationToken cancellationToken)
    {
        await migrations.CancelAsync(vmId, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Created<IncomingMigration>> CreateIncoming(HttpRequest request, Migrations migrations, CancellationToken cancellationToken)
    {
        var plan = await JsonBody.ReadAsync(request, MigrationJsonContext.Default.MigrationPlan);
        // The disks are exported where this request arrived: the address the source can reach us on, never every interface.
        var local = request.HttpContext.Connection.LocalIpAddress
            ?? throw AgentProblemException.InvalidState("This agent listens on a unix socket; a migration target must be reachable over TCP.");
        if (local.IsIPv4MappedToIPv6)
            local = local.MapToIPv4();
        if (local.Equals(IPAddress.Any) || local.Equals(IPAddress.IPv6Any))
            throw AgentProblemException.InvalidState("Cannot tell which local address the request arrived on.");
        var answer = await migrations.CreateIncomingAsync(plan, local, cancellationToken);
        return TypedResults.Created($"/v1/migrations/incoming/{answer.VmId}", answer);
    }

    private static async Task<Ok<Vm>> Complete([FromRoute(Name = "vm_id")] long vmId, Migrations migrations, CancellationToken cancellationToken) =>
        TypedResults.Ok(await migrations.CompleteAsync(vmId, cancellationToken));

    private static async Task<NoContent> Abort([FromRoute(Name = "vm_id")] long vmId, Migrations migrations, CancellationToken cancellationToken)
    {
        await migrations.AbortAsync(vmId, cancellationToken);
        return TypedResults.NoContent();
    }
}
